// The one way this page makes elements: text goes in with textContent only,
// never innerHTML, so text that comes from the server is shown, not run.

/** `el('li', 'event', 'text')`: an element with a class and text content. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
