// Keyboard focus kept across a redraw of a list whose rows are drawn again
// (replaceChildren detaches every child, which drops the focus even on a row
// that is put back): the threads view's items.

/**
 * What has the keyboard focus inside `list` (an item's Edit, Delete or tag control):
 * returns a function that gives it back after the list is drawn again, to the same
 * element if the draw kept it, else to the same control of the item's new row (a
 * row drawn anew, its "Seen by" or tags changed), else to the row itself.
 */
export function focusInside(list) {
  const active = document.activeElement;
  if (!active || active === list || !list.contains(active)) return () => {};
  const item = active.closest('li[data-item]');
  const classes = [...active.classList].map((c) => `.${CSS.escape(c)}`).join('');
  const control = active.id ? `[id="${CSS.escape(active.id)}"]` : `${active.tagName.toLowerCase()}${classes}`;
  return () => {
    if (active.isConnected) {
      active.focus({ preventScroll: true });
      return;
    }
    if (!item) return;
    const row = list.querySelector(`li[data-item="${CSS.escape(item.dataset.item)}"]`);
    const again = row && (row.querySelector(control) || (row.tabIndex >= 0 ? row : null));
    if (again) again.focus({ preventScroll: true });
  };
}
