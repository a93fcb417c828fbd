// Smart polling: only while the page is visible and the view is shown,
// at once when either comes back, and backing off while requests fail.

export function poll(fn: () => Promise<unknown>, everyMs: number, active: () => boolean = () => true): () => void {
  let stopped = false;
  let timer = 0;
  let wait = everyMs;
  const tick = async (): Promise<void> => {
    if (stopped) return;
    if (document.hidden || !active()) {
      timer = window.setTimeout(tick, 500);
      return;
    }
    try {
      await fn();
      wait = everyMs;
    } catch {
      wait = Math.min(wait * 2, 30_000);
    }
    if (!stopped) timer = window.setTimeout(tick, wait);
  };
  const wake = (): void => {
    if (!document.hidden && !stopped) {
      window.clearTimeout(timer);
      void tick();
    }
  };
  document.addEventListener("visibilitychange", wake);
  void tick();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    document.removeEventListener("visibilitychange", wake);
  };
}
