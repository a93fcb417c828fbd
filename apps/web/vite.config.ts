// The build goes into the gateway crate, which embeds it (crates/nexus-gateway/build.rs).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "../../crates/nexus-gateway/ui",
    emptyOutDir: true,
    target: "es2022",
    // One small script and one stylesheet: nothing to split.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
