// The gateway's API (/api/v1), with the session key. The UI talks to
// nothing else.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export class Api {
  constructor(private readonly key: string) {}

  private headers(body: boolean): HeadersInit {
    const h: Record<string, string> = { authorization: `Bearer ${this.key}` };
    if (body) h["content-type"] = "application/json";
    return h;
  }

  async call(method: string, path: string, body?: unknown): Promise<Json> {
    let r: Response;
    try {
      r = await fetch(`/api/v1${path}`, {
        method,
        headers: this.headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network", "Nexus does not answer: is nexusd running? (`nexus daemon start`)");
    }
    const text = await r.text();
    let v: Json = null;
    try {
      v = text ? JSON.parse(text) : null;
    } catch {
      v = null;
    }
    if (!r.ok) {
      const e = v?.error ?? {};
      throw new ApiError(r.status, e.code ?? "internal", e.message ?? `${r.status} ${r.statusText}`);
    }
    return v;
  }

  get(path: string): Promise<Json> {
    return this.call("GET", path);
  }
  post(path: string, body: unknown = {}): Promise<Json> {
    return this.call("POST", path, body);
  }
  put(path: string, body: unknown): Promise<Json> {
    return this.call("PUT", path, body);
  }
  patch(path: string, body: unknown = {}): Promise<Json> {
    return this.call("PATCH", path, body);
  }
  del(path: string): Promise<Json> {
    return this.call("DELETE", path);
  }

  /**
   * Server-sent events from `path`, resumed with `Last-Event-ID` after a
   * drop, until `signal` aborts. `fetch` rather than EventSource: the key
   * goes in a header, not the URL.
   */
  async events(path: string, onMessage: (v: Json) => void, signal: AbortSignal, onState?: (up: boolean) => void): Promise<void> {
    let last: string | null = null;
    let wait = 500;
    while (!signal.aborted) {
      try {
        const headers: Record<string, string> = { authorization: `Bearer ${this.key}`, accept: "text/event-stream" };
        if (last) headers["last-event-id"] = last;
        const r = await fetch(`/api/v1${path}`, { headers, signal });
        if (!r.ok || !r.body) throw new ApiError(r.status, "stream", `stream ${path}: ${r.status}`);
        onState?.(true);
        wait = 500;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut: number;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let data = "";
            let event = "message";
            for (const line of block.split("\n")) {
              if (line.startsWith("data: ")) data += line.slice(6);
              else if (line.startsWith("id: ")) last = line.slice(4);
              else if (line.startsWith("event: ")) event = line.slice(7);
            }
            if (data && event === "message") {
              try {
                onMessage(JSON.parse(data));
              } catch {
                /* a malformed event is skipped */
              }
            }
          }
        }
      } catch {
        if (signal.aborted) return;
      }
      onState?.(false);
      await new Promise((res) => window.setTimeout(res, wait));
      wait = Math.min(wait * 2, 10_000);
    }
  }
}
