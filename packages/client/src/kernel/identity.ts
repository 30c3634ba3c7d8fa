import stableStringify from "fast-json-stable-stringify";
import { toBase64Url } from "@lockstep/protocol";
import type { ClassRegistry } from "./registry";

/** Major version of the library; part of every versionId, so a major upgrade never shares sessions. */
export const LIBRARY_MAJOR_VERSION = 0;

const utf8 = new TextEncoder();

/** SHA-256 of UTF-8 `text`, base64url without padding (the `H` of the design). */
export async function hash(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", utf8.encode(text));
  return toBase64Url(new Uint8Array(digest));
}

/** SHA-256 of bytes, base64url without padding. */
export async function hashBytes(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return toBase64Url(new Uint8Array(digest));
}

/** A class's source with whitespace runs collapsed, so reformatting alone never forks a session. */
export function normalizeSource(source: string): string {
  return source.replace(/\s+/g, " ").trim();
}

/** A fresh random id for this client's view (12 random bytes, base64url). */
export function randomViewId(): string {
  return toBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(12)));
}

/** The three ids of a session. */
export interface SessionIdentity {
  /** H(appId + "/" + name): survives code changes; keys persisted data. */
  readonly persistentId: string;
  /** H(library major | class hashes… | constants hash): changes with any model code change. */
  readonly versionId: string;
  /** H(persistentId | options | versionId): the live session these clients share. */
  readonly sessionId: string;
}

/** Computes the identity of a session from app names, model options, registered code and Constants. */
export async function computeIdentity(input: {
  readonly appId: string;
  readonly name: string;
  readonly options: unknown;
  readonly registry: ClassRegistry;
  readonly constantsHash: string;
}): Promise<SessionIdentity> {
  const persistentId = await hash(`${input.appId}/${input.name}`);
  const classHashes = await Promise.all(
    input.registry.classes().map(({ id, cls }) => hash(`${id}:${normalizeSource(Function.prototype.toString.call(cls))}`)),
  );
  const versionId = await hash([`lockstep-${LIBRARY_MAJOR_VERSION}`, ...classHashes, input.constantsHash].join("|"));
  const sessionId = await hash(`${persistentId}|${stableStringify(input.options ?? {})}|${versionId}`);
  return { persistentId, versionId, sessionId };
}
