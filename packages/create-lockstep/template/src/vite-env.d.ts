/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The reflector's URL, set by `npm run dev` (scripts/dev.mjs) or by you for `npm run build`. */
  readonly VITE_LOCKSTEP_REFLECTOR?: string;
}
