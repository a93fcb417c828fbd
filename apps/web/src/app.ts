// What every tab gets: the API, navigation and the connection mode.

import type { Api } from "./api";

export interface Mode {
  kind: "local" | "ssh";
  host?: string;
}

export interface Ctx {
  api: Api;
  mode: Mode;
  /** Shows `tab`, and focuses the element with id `focus` in it. */
  go(tab: string, focus?: string): void;
  /** Whether `tab` is the one shown. */
  shown(tab: string): boolean;
}

export interface Tab {
  id: string;
  title: string;
  mount(panel: HTMLElement, ctx: Ctx): void;
}
