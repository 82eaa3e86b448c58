// rtp1 ids of the portal's principals (docs/keys.md "Identifiers inside rtp1
// records"): the one place the browser maps a principal to the id its keys,
// certificates and envelopes carry, and back. Python's twin: rtportal.keys.ids.

const PREFIX = Object.freeze({ staff: 's', contact: 'c', bot: 'b' });
const KIND = Object.freeze({ s: 'staff', c: 'contact', b: 'bot' });

/** The rtp1 user id of a principal {kind, id} (or of kind and id): 's3', 'c12', 'b1'. */
export function userId(kindOrPrincipal, id) {
  const kind = typeof kindOrPrincipal === 'object' ? kindOrPrincipal.kind : kindOrPrincipal;
  const num = typeof kindOrPrincipal === 'object' ? kindOrPrincipal.id : id;
  if (!(kind in PREFIX) || !Number.isSafeInteger(num) || num < 1) throw new TypeError(`no rtp1 id for ${kind} ${num}`);
  return `${PREFIX[kind]}${num}`;
}

/** {kind, id} of an rtp1 user id, or null for anything else ('#fek', 'x1', 's01'). */
export function principalOf(user) {
  const m = typeof user === 'string' ? /^([scb])([1-9][0-9]{0,15})$/.exec(user) : null;
  return m ? { kind: KIND[m[1]], id: Number(m[2]) } : null;
}

/** The thread id of a contact's welcome item (docs/keys.md, "Portal on / client invited"). */
export const welcomeThread = (contactId) => `welcome-${contactId}`;
