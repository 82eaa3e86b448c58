// A matter's page for staff: its portal state with the Portal OFF/ON
// control (which opens the invitation flyout), the portal access list with
// its actions, the applicants, and the matter's live conversation.

import { Feed } from '../client/feed.js';
import { ThreadsView } from '../client/threads.js';
import { userId } from '../shared/keyids.js';
import { Cursors } from '../shared/cursors.js';
import { el } from '../shared/dom.js';
import { button } from '../shared/forms.js';
import { api } from '../shared/http.js';
import { keyringFor } from '../shared/keysession.js';
import { ERRORS } from '../shared/strings.js';
import { STAFF, matterHeading } from '../shared/strings_staff.js';
import { failed, load, panel, routeHref } from './common.js';
import { inviteFlyout } from './flyout.js';
import { inviteList, inviteStatus, isLive } from './invites.js';
import { portalBadge, portalOn, refOf } from './matters.js';
import { confirmBinding, epochWithout } from './clientkeys.js';
import { refreshHeadIfOld } from './keyctx.js';
import { phaseForm } from './phase.js';
import { checklistView } from './checklist.js';
import { threadTools } from './threadtools.js';

const enc = encodeURIComponent;

/**
 * The live conversation of one matter (the same Feed the stream page uses),
 * decrypted with the staff member's keyring (null: no keys on this device).
 */
async function startStream(ctx, matter, container, onEvent, keyring, thread) {
  const views = new Map();
  // threads once the server's hello says so (ThreadsView.serverVersion); the flat stream until then
  const view = new ThreadsView(
    { ref: refOf(matter), title: matter.title, head: matter.head },
    {
      keyring,
      staff: true,
      openThread: thread,
      me: userId(ctx.principal),
      threadTools: threadTools({ onSignedOut: ctx.onSignedOut }),
      onSignedOut: ctx.onSignedOut,
      onRekey: (users) => epochWithout(ctx, refOf(matter), users),
      onLoadEarlier: (ref) => feed.loadEarlier(ref),
      tools: (ref) => phaseForm(ref, { onSignedOut: ctx.onSignedOut }),
    },
  );
  const add = view.add.bind(view);
  view.add = (event) => {
    add(event);
    onEvent(event);
  };
  views.set(refOf(matter), view);
  container.append(view.section);
  const feed = new Feed({
    principal: ctx.principal,
    views,
    cursors: new Cursors(ctx.principal),
    onState: ctx.onState,
    onSignedOut: ctx.onSignedOut,
    onSessionEnded: ctx.onSessionEnded,
    onAccessRemoved: ctx.onSessionEnded,
    onFatal: () => ctx.onState('error'),
  });
  view.keysReady();
  feed.start();
  return feed;
}

/** The keyring with the firm's and this matter's keys read (problems stay on it for the view). */
async function staffKeyring(principal, ref) {
  let keyring = null;
  try {
    keyring = await keyringFor(principal);
    if (!keyring) return null;
    await keyring.syncFirm();
  } catch (err) {
    if (keyring) keyring.problems.push({ what: 'root', scope: 'firm', code: err.code || 'network' });
    return keyring;
  }
  try {
    if (keyring.trust) await keyring.syncMatter(ref);
  } catch (err) {
    keyring.problems.push({ what: 'matter', scope: ref, code: err.code || 'network' });
  }
  return keyring;
}

export function matterView(ctx, ref, thread) {
  refreshHeadIfOld(ctx, ref); // a head older than 30 days is re-signed by the first staff member who opens the matter
  const section = panel('matter-page', ref);
  const back = el('a', 'back', STAFF.backToMatters);
  back.href = routeHref('matters');
  section.prepend(back);
  const heading = section.querySelector('h2');
  const portalRow = el('div', 'portal-row');
  const access = el('section', 'subpanel');
  access.id = 'portal-access';
  const accessTitle = el('h3', null, STAFF.invitesTitle);
  const accessBody = el('div');
  access.append(accessTitle, accessBody);
  const people = el('section', 'subpanel');
  people.id = 'applicants';
  const stream = el('div', 'matter-stream');
  let flyout = null;
  let feed = null;
  let stopped = false;
  let matter = null;
  let applicants = [];
  let refreshTimer = null;
  let lastShown = null;
  const triedBindings = new Set(); // handover records this page tried to confirm as bindings

  function renderPortal(invites) {
    const on = portalOn(matter) || invites.some(isLive);
    const control = button(on ? STAFF.inviteMore : STAFF.turnPortalOn, on ? 'button quiet' : 'button', 'button');
    control.id = 'portal-control';
    control.setAttribute('aria-controls', 'invite-flyout');
    control.addEventListener('click', openFlyout);
    const label = el('span', 'portal-label', STAFF.portal);
    portalRow.replaceChildren(label, portalBadge(on), control);
  }

  function renderApplicants() {
    const list = el('ul', 'chips');
    for (const c of applicants) list.append(el('li', 'chip', c.name));
    people.replaceChildren(el('h3', null, STAFF.applicants), applicants.length ? list : el('p', 'empty', STAFF.noApplicants));
  }

  async function refresh() {
    if (stopped) return;
    try {
      const [detail, invites] = await Promise.all([
        api('GET', `/api/v1/matters/${enc(ref)}`),
        api('GET', `/api/v1/matters/${enc(ref)}/invites`),
      ]);
      if (stopped) return;
      matter = { ...matter, ...(detail.matter || detail) };
      applicants = detail.applicants || matter.applicants || applicants;
      heading.textContent = matterHeading(matter.title, refOf(matter) || ref);
      // Unchanged answers leave the page alone (an open "remove?" stays open).
      const shown = JSON.stringify([matter, applicants, invites.invites]);
      if (shown === lastShown) return;
      lastShown = shown;
      renderPortal(invites.invites);
      renderApplicants();
      accessBody.replaceChildren(
        inviteList(invites.invites, {
          ctx,
          ref,
          onChanged: refresh,
          onFailed: (line, err) => failed(ctx, line, err),
        }),
      );
      await confirmBindings(invites.invites);
    } catch (err) {
      lastShown = null;
      const line = el('p', 'form-status');
      accessBody.replaceChildren(line);
      failed(ctx, line, err);
    }
  }

  // A client with a password accepted this matter's invite and bound its key to their
  // identity (docs/keys.md "A second matter"): this browser certifies that identity here
  // too, with no code to compare; each handover is tried once per page.
  async function confirmBindings(invites) {
    if (!ctx) return;
    let changed = false;
    for (const invite of invites) {
      const record = invite.handover && invite.handover.record;
      if (inviteStatus(invite) !== 'active' || !record || triedBindings.has(record)) continue;
      triedBindings.add(record);
      const contactId = (invite.contact && invite.contact.id) ?? invite.contact_id;
      try {
        if (await confirmBinding(ctx, ref, contactId, invite.handover)) changed = true;
      } catch {
        // not this browser's to do (no portal.manage on the matter, or the keys changed
        // meanwhile): the list stays; another staff browser, or the next visit, confirms it
      }
    }
    if (changed) {
      lastShown = null;
      await refresh();
    }
  }

  // Invite events (sent, resent, accepted, removed) and the welcome item
  // change the access list: read it again once they stop arriving.
  function onEvent(event) {
    const handover = event.kind === 'keys' && event.payload && event.payload.what === 'handover';
    if (event.kind !== 'invite' && event.kind !== 'welcome' && !handover) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 300);
  }

  function closeFlyout() {
    if (flyout) flyout.remove();
    flyout = null;
    const control = document.getElementById('portal-control');
    if (control) control.focus();
  }

  // The applicants as contacts with their addresses and numbers (the
  // flyout picks a method from them); a contact that cannot be read keeps
  // its name only.
  function applicantContacts() {
    return Promise.all(
      applicants.map(async (a) => {
        const id = a.id ?? a.contact_id;
        try {
          const data = await api('GET', `/api/v1/contacts/${enc(id)}`);
          return data.contact || data;
        } catch (err) {
          return { id, name: a.name };
        }
      }),
    );
  }

  async function openFlyout() {
    if (flyout) return;
    flyout = el('section', 'flyout'); // taken at once: a second click does nothing
    const contacts = await applicantContacts();
    if (stopped) return;
    flyout = inviteFlyout({
      ctx,
      ref,
      applicants: contacts,
      onClose: closeFlyout,
      onAdded: refresh,
      onSent: () => {
        closeFlyout();
        refresh();
      },
      onFailed: (line, err) => failed(ctx, line, err),
    });
    portalRow.after(flyout);
    const first = flyout.querySelector('input, select, textarea');
    if (first) first.focus();
  }

  load(ctx, section, async () => {
    const list = await api('GET', '/api/v1/matters');
    return list.matters.find((m) => refOf(m) === ref) || null;
  }).then(async (found) => {
    if (stopped) return;
    if (!found) {
      section.append(el('p', 'empty', ERRORS.not_found));
      return;
    }
    matter = found;
    section.append(portalRow, access, people, stream);
    await refresh();
    if (stopped) return;
    const keyring = await staffKeyring(ctx.principal, refOf(matter));
    const checklist = checklistView(refOf(matter), { keyring, onSignedOut: ctx.onSignedOut });
    people.after(checklist.element);
    const events = (event) => {
      onEvent(event);
      checklist.onEvent(event);
    };
    if (!stopped) feed = await startStream(ctx, matter, stream, events, keyring, thread);
    if (stopped && feed) feed.stop();
  });

  return {
    node: section,
    stop() {
      stopped = true;
      clearTimeout(refreshTimer);
      if (feed) feed.stop();
    },
  };
}
