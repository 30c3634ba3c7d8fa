/**
 * What jsdom lacks of the browser APIs the client uses, taken from Node (import this module first
 * in every test file, before anything imports @lockstep/client). jsdom's globals live in a realm
 * of their own: bytes from Node are copied into this realm's Uint8Array, so `instanceof` checks
 * in the client hold as they do in a browser.
 */
import { TextDecoder as NodeTextDecoder, TextEncoder as NodeTextEncoder } from "node:util";
import { webcrypto } from "node:crypto";

const g = globalThis as Record<string, unknown>;

if (typeof g.TextEncoder === "undefined") {
  const encoder = new NodeTextEncoder();
  g.TextEncoder = class TextEncoder {
    readonly encoding = "utf-8";
    encode(input = ""): Uint8Array {
      return new Uint8Array(encoder.encode(input));
    }
    encodeInto(input: string, dest: Uint8Array): { read: number; written: number } {
      return encoder.encodeInto(input, dest);
    }
  };
}
if (typeof g.TextDecoder === "undefined") g.TextDecoder = NodeTextDecoder;
if ((g.crypto as { subtle?: unknown } | undefined)?.subtle === undefined) {
  Object.defineProperty(globalThis, "crypto", {
    configurable: true,
    value: {
      subtle: webcrypto.subtle,
      getRandomValues: <T extends ArrayBufferView>(array: T): T => webcrypto.getRandomValues(array as never),
      randomUUID: () => webcrypto.randomUUID(),
    },
  });
}
// React's act() environment is not used: the tests wait for renders the way an app sees them.
g.IS_REACT_ACT_ENVIRONMENT = false;
