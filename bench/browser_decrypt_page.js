// The in-page half of bench/browser_decrypt.py, passed to Playwright's page.evaluate:
// unlock a backup, read the key directory, then render and decrypt a matter's messages.
async ({ firm, user, password, backup, ref }) => {
    const ring = await import('/shared/keyring.js');
    const session = await import('/shared/keysession.js');
    const { MatterView } = await import('/client/render.js');
    const { historyPage } = await import('/shared/http.js');
    const { fromB64url } = await import('/crypto/bytes.js');
    await ring.forgetAll();
    let t = performance.now();
    const kr = await ring.unlockWithPassword({ firm, user, password, backupBytes: fromB64url(backup) });
    const unlock = performance.now() - t;
    session.useKeyring(kr);
    t = performance.now();
    await kr.syncFirm();
    await kr.syncMatter(ref);
    const sync = performance.now() - t;
    const events = [];
    for (let after = 0, more = true; more; ) {
        const page = await historyPage(ref, { after, limit: 500 });
        events.push(...page.events);
        after = page.next;
        more = page.more;
    }
    const messages = events.filter((e) => e.kind === 'message');
    t = performance.now();
    const view = new MatterView({ ref, title: 'bench' }, { keyring: kr });
    document.getElementById('screen').replaceChildren(view.section);
    view.setBusy(true); // as the Feed does while a history page loads: no layout reads per event
    for (const e of messages) view.add(e);
    view.setBusy(false);
    await new Promise((resolve) => {
        const tick = () => {
            const done = view.section.querySelectorAll('.message-body[data-crypto="ok"]').length;
            if (done >= messages.length) resolve(); else requestAnimationFrame(tick);
        };
        tick();
    });
    void document.body.offsetHeight; // layout
    const render = performance.now() - t;
    const failed = view.section.querySelectorAll('.message-body:not([data-crypto="ok"])').length;
    // the same envelopes opened again without any DOM (what the crypto alone costs)
    t = performance.now();
    const opened = await Promise.all(messages.map((e) => kr.open(ref, e.payload.thread, e.blob, { seq: e.seq })));
    const openOnly = performance.now() - t;
    return { unlock, sync, render, openOnly, shown: messages.length, failed: failed + opened.filter((o) => !o.ok).length };
}
