/**
 * What jsdom lacks of the browser APIs the client's modules touch when they load (TextEncoder and
 * TextDecoder), taken from Node. Import it first in a `@jest-environment jsdom` test file.
 */
import { TextDecoder as NodeTextDecoder, TextEncoder as NodeTextEncoder } from "node:util";

const g = globalThis as Record<string, unknown>;
if (typeof g.TextEncoder === "undefined") g.TextEncoder = NodeTextEncoder;
if (typeof g.TextDecoder === "undefined") g.TextDecoder = NodeTextDecoder;
