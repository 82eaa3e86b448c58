// Staff extras of the thread views (static/client/threads.js `threadTools`):
// a new thread is a client message to chosen client members of the matter or
// an internal thread; the "To:" line of a client thread; internal-only tags
// on items (add, remove, create) and the thread list's tag filter. Tag names
// are ciphertext under the firm internal key (docs/threads.md "Tags"): the
// keyring opens and seals them (`openTagName`, `sealTagName`,
// static/shared/tagnames.js); a device without the firm keys shows a short
// form of a tag's id and cannot create tags. A name is only ever set as text.
//
// Stable hooks for tests (ref = the matter reference):
//   #new-thread-kind-<ref>       fieldset: input[name=thread-kind][value=client|internal]
//   #recipients-<ref>            fieldset of input.recipient[type=checkbox][value=<contact id>]
//   #tag-filter-<ref>            <select> of the thread list's tag filter ('' = all)
//   .item-tags[data-item]        per item: li.tag-chip[data-tag] with span.tag-name, button.tag-remove,
//                                select.tag-add, input.tag-new + button.tag-create

import { el } from '../shared/dom.js';
import { errorText } from '../shared/forms.js';
import { ApiError, api } from '../shared/http.js';
import { THREADS, removeTagText, toText } from '../shared/strings_threads.js';
import { createTag, firmTags, rowsOf, tagItem } from '../shared/threadapi.js';
import { newThreadId } from '../client/itemsend.js';
import { contactIdOf, contactName, inviteStatus } from './invites.js';

const enc = encodeURIComponent;

/** The firm's tags, read once per page: id -> name (null: not readable on this device). */
export class TagStore {
  constructor(onSignedOut) {
    this.onSignedOut = onSignedOut;
    this.names = new Map();
    this.loading = null;
    this.loaded = false;
    this.keyring = null;
    this.asked = new Set(); // tags met on items that the last list did not have
    this.listeners = new Set();
  }

  load(keyring) {
    this.keyring = keyring;
    if (!this.loading) {
      this.loading = firmTags()
        .then(async (answer) => {
          for (const row of rowsOf(answer, 'tags')) {
            if (row && typeof row.tag === 'string') this.names.set(row.tag, await this.open(keyring, row));
          }
          this.loaded = true;
          this.changed();
        })
        .catch((err) => {
          if (err instanceof ApiError && err.status === 401) this.onSignedOut();
        });
    }
    return this.loading;
  }

  async open(keyring, row) {
    if (!keyring || typeof keyring.openTagName !== 'function' || !row.name_blob) return null;
    try {
      return await keyring.openTagName(row.tag, row.name_blob);
    } catch {
      return null;
    }
  }

  canName(keyring) {
    // the firm internal key: a device waiting for approval has none yet
    return Boolean(keyring && typeof keyring.sealTagName === 'function' && keyring.firmKeys && keyring.firmKeys.size > 0);
  }

  async create(keyring, name) {
    const tag = newThreadId(); // 16 random bytes, base64url: the same shape as a tag id
    let blob;
    try {
      blob = await keyring.sealTagName(tag, name);
    } catch {
      throw new Error(THREADS.tagSealFailed); // no firm internal key on this device (yet)
    }
    await createTag(tag, blob);
    this.names.set(tag, name);
    this.changed();
    return tag;
  }

  label(tag) {
    if (!this.names.has(tag)) this.learn(tag);
    return this.names.get(tag) || `${THREADS.tagUnnamed} ${tag.slice(0, 6)}`;
  }

  /** A tag another staff member created since the list was read: read the list again, once. */
  learn(tag) {
    if (!this.loaded || this.asked.has(tag)) return;
    this.asked.add(tag);
    this.loading = null;
    this.load(this.keyring);
  }

  changed() {
    for (const fn of this.listeners) fn();
  }
}

/** The client members of a matter who may receive a client thread: accepted invites. */
async function clientMembers(ref) {
  const answer = await api('GET', `/api/v1/matters/${enc(ref)}/invites`);
  const seen = new Map();
  for (const invite of answer.invites || []) {
    if (inviteStatus(invite) === 'active') seen.set(contactIdOf(invite), contactName(invite));
  }
  return [...seen].map(([id, name]) => ({ id, name }));
}

export function threadTools({ onSignedOut }) {
  const tags = new TagStore(onSignedOut);
  const members = new Map(); // ref -> Promise of [{id, name}]
  const membersOf = (ref) => {
    if (!members.has(ref)) members.set(ref, clientMembers(ref).catch(() => []));
    return members.get(ref);
  };
  const names = new Map(); // contact id -> name (from the invites)
  const drafts = new Map(); // item id -> the tag name being typed: a row may be redrawn meanwhile

  return {
    /** The thread list's tag filter. */
    listFilter(view) {
      const box = el('label', 'tag-filter');
      const select = el('select');
      select.id = `tag-filter-${view.ref}`;
      box.append(el('span', null, THREADS.filterTag), select);
      const fill = () => {
        const value = select.value;
        const options = [['', THREADS.allThreads], ...[...tags.names.keys()].map((t) => [t, tags.label(t)])];
        select.replaceChildren(...options.map(([v, text]) => {
          const o = el('option', null, text);
          o.value = v;
          return o;
        }));
        select.value = options.some(([v]) => v === value) ? value : '';
      };
      tags.listeners.add(fill);
      fill();
      if (!tags.canName(view.keyring)) box.append(el('span', 'hint', THREADS.tagNamesUnavailable));
      tags.load(view.keyring);
      select.addEventListener('change', () => {
        view.tagFilter = select.value || null;
        view.schedule(true);
      });
      return box;
    },

    threadFilter(view) {
      if (!view.tagFilter) return null;
      const wanted = view.model.threadsWithTag(view.tagFilter);
      return (t) => wanted.has(t.thread);
    },

    /** "To: Cleo Client" of a client thread. */
    recipientsLine(view, data) {
      if (data.kind !== 'client') return null;
      const to = view.model.summary(data.thread).to;
      if (!to.length) return null;
      membersOf(view.ref).then((list) => {
        let learnt = false;
        for (const m of list) {
          if (names.has(m.id)) continue;
          names.set(m.id, m.name);
          learnt = true;
        }
        if (learnt) view.schedule(true);
      });
      return toText(to.map((id) => names.get(id) || String(id)));
    },

    /** The new-thread choice: a client message to chosen clients, or an internal thread. */
    /** The new-thread fields; `kept.internal`: an internal thread was chosen before a redraw. */
    newThreadFields(view, kept = {}) {
      const ref = view.ref;
      members.delete(ref); // asked again each time: a client may have joined or left since
      const node = el('div', 'new-thread-fields');
      const kinds = el('fieldset', 'thread-kind');
      kinds.id = `new-thread-kind-${ref}`;
      kinds.append(el('legend', null, THREADS.threadKind));
      const radio = (value, text, checked) => {
        const input = el('input');
        input.type = 'radio';
        input.name = 'thread-kind';
        input.value = value;
        input.checked = checked;
        const label = el('label', value === 'internal' ? 'checkbox internal-choice' : 'checkbox', text);
        label.prepend(input);
        kinds.append(label);
        return input;
      };
      const client = radio('client', THREADS.newClientThread, !kept.internal);
      const internal = radio('internal', THREADS.newInternalThread, Boolean(kept.internal));
      const people = el('fieldset', 'recipients');
      people.id = `recipients-${ref}`;
      people.append(el('legend', null, THREADS.recipients));
      const boxes = [];
      membersOf(ref).then((list) => {
        if (!list.length) people.append(el('p', 'hint', THREADS.noRecipients));
        for (const m of list) {
          names.set(m.id, m.name);
          const input = el('input', 'recipient');
          input.type = 'checkbox';
          input.value = String(m.id);
          input.checked = list.length === 1; // one client: they are the obvious recipient
          const label = el('label', 'checkbox', m.name);
          label.prepend(input);
          people.append(label);
          boxes.push(input);
        }
      });
      node.append(kinds, people);
      people.hidden = internal.checked;
      const listeners = [];
      const changed = () => {
        people.hidden = internal.checked;
        for (const fn of listeners) fn();
      };
      client.addEventListener('change', changed);
      internal.addEventListener('change', changed);
      return {
        node,
        internal: () => internal.checked,
        onChange: (fn) => listeners.push(fn),
        read() {
          if (internal.checked) return { internal: true };
          const to = boxes.filter((b) => b.checked).map((b) => Number(b.value));
          return to.length ? { to } : { error: THREADS.pickRecipient };
        },
      };
    },

    /** The tags of one item: chips with remove, a select to add, a field to create one. */
    itemTags(view, item) {
      const box = el('div', 'item-tags');
      box.dataset.item = item.id;
      const status = el('p', 'form-status');
      status.setAttribute('role', 'status');
      const act = async (tag, removed) => {
        try {
          const answer = await tagItem(view.ref, item.id, tag, removed);
          if (answer && answer.event) view.add(answer.event);
        } catch (err) {
          if (err instanceof ApiError && err.status === 401) onSignedOut();
          status.textContent = errorText(err);
        }
      };
      const list = el('ul', 'tag-chips');
      list.setAttribute('aria-label', THREADS.tags);
      for (const tag of item.tags) {
        const chip = el('li', 'tag-chip');
        chip.dataset.tag = tag;
        chip.append(el('span', 'tag-name', tags.label(tag)));
        const remove = el('button', 'tag-remove', '×');
        remove.type = 'button';
        remove.setAttribute('aria-label', removeTagText(tags.label(tag)));
        remove.addEventListener('click', () => act(tag, true));
        chip.append(remove);
        list.append(chip);
      }
      const add = el('select', 'tag-add');
      add.setAttribute('aria-label', THREADS.addTag);
      const fill = () => {
        const options = [['', THREADS.pickTag]];
        for (const tag of tags.names.keys()) if (!item.tags.includes(tag)) options.push([tag, tags.label(tag)]);
        add.replaceChildren(...options.map(([v, text]) => {
          const o = el('option', null, text);
          o.value = v;
          return o;
        }));
      };
      fill();
      // names read (or learnt) after this item was drawn: relabel in place, so a name
      // being typed in the field below stays; a box no longer on screen lets go
      const relabel = () => {
        if (!box.isConnected) {
          tags.listeners.delete(relabel);
          return;
        }
        for (const chip of list.children) {
          const text = tags.label(chip.dataset.tag);
          chip.querySelector('.tag-name').textContent = text;
          chip.querySelector('.tag-remove').setAttribute('aria-label', removeTagText(text));
        }
        fill();
      };
      tags.listeners.add(relabel);
      tags.load(view.keyring);
      add.addEventListener('change', () => add.value && act(add.value, false));
      box.append(list, add);
      if (tags.canName(view.keyring)) {
        const name = el('input', 'tag-new');
        name.maxLength = 100;
        name.setAttribute('aria-label', THREADS.newTagName);
        name.placeholder = THREADS.newTagName;
        name.value = drafts.get(item.id) || '';
        name.addEventListener('input', () => drafts.set(item.id, name.value));
        const create = el('button', 'button quiet tag-create', THREADS.createTag);
        create.type = 'button';
        create.addEventListener('click', async () => {
          const typedName = name.value;
          const value = typedName.trim();
          if (!value) return;
          try {
            const tag = await tags.create(view.keyring, value);
            if (name.value === typedName) {
              // else typed meanwhile: the next name, kept with its draft
              drafts.delete(item.id);
              name.value = '';
            }
            await act(tag, false);
          } catch (err) {
            status.textContent = errorText(err);
          }
        });
        box.append(name, create);
      }
      box.append(status);
      return box;
    },
  };
}
