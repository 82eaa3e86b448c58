// Keyboard focus kept across a redraw of a list whose rows are drawn again
// (replaceChildren detaches every child, which drops the focus even on a row
// that is put back; a row drawn anew, or swapped for its copy opened with new
// keys, is another element): the threads view's items.

const ROW = 'li.item[data-item]:not(.claim)';
// what tells a control from its like in the same row: the tag chip, the file it is under
const PLACES = ['tag', 'file'];

/**
 * What has the keyboard focus inside `list` (an item's Edit or Delete, a tag's ×, a
 * file's Download, the row itself): returns a function that gives it back after the
 * list, or a row of it, is drawn again: to the same element if the draw kept it, else
 * to the one element of the item's new row that is the same control (its id, else its
 * tag and classes under the same tag chip or file), else nowhere. Never to another
 * control: a tag's × focused in place of another's would remove the wrong tag.
 */
export function focusInside(list) {
  const active = document.activeElement;
  if (!active || active === list || !list.contains(active)) return () => {};
  const item = active.closest(ROW);
  const control = item && active !== item ? controlSelector(item, active) : null;
  return () => {
    if (active.isConnected) {
      active.focus({ preventScroll: true });
      return;
    }
    if (!item) return;
    const row = [...list.querySelectorAll(ROW)].find((li) => li.dataset.item === item.dataset.item);
    if (!row) return;
    if (active === item) {
      // the row itself (the jump to the first unread focuses it)
      if (!item.hasAttribute('tabindex')) return;
      row.tabIndex = item.tabIndex;
      row.focus({ preventScroll: true });
      return;
    }
    const found = control ? row.querySelectorAll(control) : [];
    if (found.length === 1) found[0].focus({ preventScroll: true });
  };
}

/** A selector naming `active` alone in its row `item`, or null when it cannot. */
function controlSelector(item, active) {
  let selector = active.id
    ? `[id="${CSS.escape(active.id)}"]`
    : active.tagName.toLowerCase() + [...active.classList].map((c) => `.${CSS.escape(c)}`).join('');
  for (let node = active.parentElement; node && node !== item; node = node.parentElement) {
    for (const place of PLACES) {
      const value = node.dataset[place];
      if (value !== undefined) selector = `[data-${place}="${CSS.escape(value)}"] ${selector}`;
    }
  }
  // one of several alike (a Cancel among the row's quiet buttons): not given back
  return item.querySelectorAll(selector).length === 1 ? selector : null;
}
