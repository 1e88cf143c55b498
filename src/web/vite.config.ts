import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const env = process.env;
const apiTarget = env.VITE_API_TARGET ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  server: {
    // The container sets VITE_HOST=0.0.0.0; on a developer's machine the server stays on loopback.
    host: env.VITE_HOST ?? "127.0.0.1",
    port: 5173,
    strictPort: true,
    // Host names other than localhost/IPs (e.g. a Compose service name) must be allowed explicitly.
    allowedHosts: env.VITE_ALLOWED_HOSTS?.split(","),
    proxy: {
      "/api": apiTarget,
      "/health": apiTarget,
    },
    // The port the browser reaches when it differs from 5173 (a published container port).
    hmr: env.VITE_HMR_CLIENT_PORT ? { clientPort: Number(env.VITE_HMR_CLIENT_PORT) } : undefined,
    // Bind mounts do not always deliver inotify events.
    watch: env.VITE_POLL === "1" ? { usePolling: true, interval: 300 } : undefined,
  },
  build: {
    outDir: "dist",
  },
});
