/**
 * Vite build of the Shoal web UI. The app lives in web/ and imports the shared protocol (zod schemas, route
 * table) and the typed client from ../src, so the repository root is allowed for the dev server too.
 * `npm run build:web` writes web/dist, which the coordinator serves at its root URL.
 */
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const webDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(webDir, '..');

export default defineConfig({
  root: webDir,
  // Absolute asset URLs: the coordinator serves the app at its root and answers deep paths with index.html
  // (SPA fallback), where relative URLs would resolve under the deep path.
  base: '/',
  plugins: [react()],
  build: {
    outDir: path.join(webDir, 'dist'),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1024,
    rollupOptions: {
      onwarn(warning, warn) {
        // zod ships comments Rollup cannot place; harmless, and they drown the real warnings.
        if (warning.code === 'INVALID_ANNOTATION' || /contains an annotation/.test(warning.message)) return;
        warn(warning);
      },
    },
  },
  server: {
    fs: { allow: [repoRoot] },
  },
});
