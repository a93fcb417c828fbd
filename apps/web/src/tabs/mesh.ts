// Mesh: chat in topics and direct messages, the members with presence,
// unread counts and mentions, live over server-sent events.

import type { Json } from "../api";
import type { Ctx, Tab } from "../app";
import { errorBox } from "../errors";
import { button, fill, h, keyed, toast } from "../dom";
import { poll } from "../poll";

interface Room {
  kind: "topic" | "dm";
  name: string;
}

export const meshTab: Tab = {
  id: "mesh",
  title: "Mesh",
  mount(panel: HTMLElement, ctx: Ctx) {
    const rooms = h("nav", { class: "rooms", "aria-label": "Topics and direct messages" });
    const log = h("ol", { class: "messages", id: "messages", "aria-live": "polite", "aria-label": "Messages" });
    const title = h("h3", { id: "room-title" }, "Pick a topic");
    const text = h("textarea", { id: "compose", rows: 2, placeholder: "Write a message" });
    const composeLabel = h("label", { for: "compose" }, "Message");
    const members = h("ul", { class: "members", id: "members", "aria-label": "Members" });
    const errors = h("div");
    panel.append(
      errors,
      h(
        "div",
        { class: "chat" },
        rooms,
        h("div", { class: "room" }, title, log, h("form", { class: "compose", onsubmit: (e: Event) => { e.preventDefault(); void send(); } }, composeLabel, text, h("button", { type: "submit", class: "primary", id: "send" }, "Send"))),
        h("aside", { "aria-labelledby": "members-title" }, h("h3", { id: "members-title" }, "Members"), members),
      ),
    );
    text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        void send();
      }
    });

    let me = "";
    let current: Room | null = null;
    const unread = new Map<string, number>();
    const mentions = new Map<string, number>();
    let topics: string[] = [];
    let peers: Json[] = [];
    const dms = new Map<string, Json[]>();

    const key = (r: Room): string => `${r.kind}:${r.name}`;
    const mentioned = (t: string): boolean => Boolean(me) && t.toLowerCase().includes(`@${me.toLowerCase()}`);

    const renderRooms = (): void => {
      const item = (r: Room, label: string): HTMLElement => {
        const n = unread.get(key(r)) ?? 0;
        const m = mentions.get(key(r)) ?? 0;
        return h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: `room-link${current && key(current) === key(r) ? " active" : ""}`,
              "aria-current": current && key(current) === key(r) ? "true" : undefined,
              "data-room": key(r),
              onclick: () => void openRoom(r),
            },
            label,
            n ? h("span", { class: "badge unread", "data-unread": key(r), "aria-label": `${n} unread` }, n) : null,
            m ? h("span", { class: "badge mention", "aria-label": `${m} mention${m > 1 ? "s" : ""}` }, `@${m}`) : null,
          ),
        );
      };
      const dmNames = new Set<string>([...dms.keys()]);
      fill(
        rooms,
        h("h3", {}, "Topics"),
        h("ul", {}, ...topics.map((t) => item({ kind: "topic", name: t }, `#${t}`))),
        h("h3", {}, "Direct"),
        h("ul", {}, ...[...dmNames].map((p) => item({ kind: "dm", name: p }, p))),
      );
    };

    const renderMembers = (): void => {
      // In place, by member: the Message buttons stay put between polls.
      keyed(
        members,
        peers,
        (p) => `${p.id}:${p.name === me}`,
        (p) =>
          h(
            "li",
            {},
            h("span", { class: "presence", "aria-hidden": "true" }),
            h("span", {}, p.name, p.type === "human" ? " (person)" : p.name === me ? " (you)" : ""),
            h("span", { class: "visually-hidden" }),
            h("span", { class: "muted" }),
            p.type !== "human" && p.name !== me
              ? button("Message", () => {
                  if (!dms.has(p.name)) dms.set(p.name, []);
                  void openRoom({ kind: "dm", name: p.name });
                }, { "aria-label": `Message ${p.name}`, class: "small" })
              : null,
          ),
        (li, p) => {
          li.className = p.online ? "online" : "offline";
          const [, , sr, status] = Array.from(li.children);
          const online = p.online ? " online" : " offline";
          if (sr.textContent !== online) sr.textContent = online;
          const st = p.status ? ` — ${p.status}` : "";
          if (status.textContent !== st) status.textContent = st;
        },
      );
    };

    const line = (m: Json): HTMLElement => {
      const via = m.bridged ? ` via ${m.from}` : "";
      const from = m.bridged ? `${m.bridged.origin_from}@${m.bridged.origin_mesh}` : m.from;
      return h("li", { class: mentioned(m.text) ? "mention" : "" }, h("strong", {}, from), h("span", { class: "muted" }, via), " ", m.text);
    };

    const openRoom = async (r: Room): Promise<void> => {
      current = r;
      title.textContent = r.kind === "topic" ? `#${r.name}` : `Direct: ${r.name}`;
      composeLabel.textContent = r.kind === "topic" ? `Message #${r.name}` : `Message ${r.name}`;
      unread.delete(key(r));
      mentions.delete(key(r));
      renderRooms();
      if (r.kind === "topic") {
        try {
          const page = await ctx.api.get(`/topics/${encodeURIComponent(r.name)}/messages?limit=100`);
          fill(log, ...[...page.messages].reverse().map(line));
          await ctx.api.patch(`/topics/${encodeURIComponent(r.name)}/read`);
        } catch (e) {
          fill(log, h("li", {}, errorBox(e, ctx)));
        }
      } else {
        fill(log, ...(dms.get(r.name) ?? []).map(line));
        await ctx.api.patch(`/messages/read?from=${encodeURIComponent(r.name)}`).catch(() => undefined);
      }
      log.scrollTop = log.scrollHeight;
    };

    const send = async (): Promise<void> => {
      const t = text.value.trim();
      if (!t || !current) return;
      try {
        if (current.kind === "topic") {
          await ctx.api.post(`/topics/${encodeURIComponent(current.name)}/messages`, { text: t });
          // One's own messages do not come back through the inbox.
          log.append(line({ from: me || "me", text: t }));
          log.scrollTop = log.scrollHeight;
        } else {
          await ctx.api.post("/messages", { to: current.name, text: t });
          const mine = { from: me || "me", text: t };
          dms.get(current.name)?.push(mine);
          log.append(line(mine));
        }
        text.value = "";
      } catch (e) {
        toast(e instanceof Error ? e.message : String(e), "error");
      }
    };

    /** A message stored by the daemon: shown, or counted as unread. */
    const arrive = (m: Json): void => {
      const r: Room | null = m.kind === "topic" ? { kind: "topic", name: m.topic } : m.kind === "dm" ? { kind: "dm", name: m.from } : null;
      if (!r) return;
      if (r.kind === "dm") {
        if (!dms.has(r.name)) dms.set(r.name, []);
        dms.get(r.name)?.push(m);
      }
      if (r.kind === "topic" && !topics.includes(r.name)) topics.push(r.name);
      const here = current && key(current) === key(r) && ctx.shown("mesh") && !document.hidden;
      if (here) {
        log.append(line(m));
        log.scrollTop = log.scrollHeight;
        const read = r.kind === "topic" ? `/topics/${encodeURIComponent(r.name)}/read` : `/messages/read?from=${encodeURIComponent(r.name)}`;
        void ctx.api.patch(read).catch(() => undefined);
      } else {
        unread.set(key(r), (unread.get(key(r)) ?? 0) + 1);
        if (mentioned(m.text)) mentions.set(key(r), (mentions.get(key(r)) ?? 0) + 1);
      }
      renderRooms();
    };

    const load = async (): Promise<void> => {
      try {
        const who = await ctx.api.get("/whoami");
        me = who.peer?.name ?? "";
        const t = await ctx.api.get("/topics");
        topics = t.topics.map((x: Json) => x.name);
        // The stream replays what is unread first (topics and direct
        // messages), then what arrives: the counts come from it alone.
        fill(errors);
        renderRooms();
        const ctl = new AbortController();
        void ctx.api.events("/events", arrive, ctl.signal);
      } catch (e) {
        fill(errors, errorBox(e, ctx));
      }
    };
    void load();
    poll(async () => {
      peers = (await ctx.api.get("/peers")).peers;
      renderMembers();
    }, 3000, () => ctx.shown("mesh"));
    // Back to the tab: what arrived meanwhile in the open room is read now.
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && current && ctx.shown("mesh")) void openRoom(current);
    });
  },
};
