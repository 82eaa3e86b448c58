// A read of the server asked for again while it runs (a page of history
// holds many events that each ask for it): at most one more read follows
// the one running, so a burst costs two reads and the last one sees every
// change the burst announced (events are published after their commit).

/** `read()` wrapped so calls during a run coalesce; a failure goes to `onError(err)`. */
export function coalesced(read, onError) {
  let running = false;
  let again = false;
  return async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await read();
      } while (again);
    } catch (err) {
      onError(err);
    } finally {
      running = false;
    }
  };
}
