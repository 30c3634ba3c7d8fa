// Honest clients: the real client library (from its dist), as an application would use it.
import { sha256 } from "./ids.mjs";
import { withTimeout } from "./time.mjs";

const CLIENT_URL = import.meta.resolve("@lockstep/client");
/**
 * A fresh instance of the client library: its class registry is a module singleton, and every
 * registered class is part of the versionId, so each code version gets a module instance of its own.
 */
export const loadClient = (tag) => import(`${CLIENT_URL}?probe=${tag}`);

/**
 * Keeps the library's console output out of the probe's report (unless --verbose): console methods
 * append to the returned array instead, which keeps the last 500 lines.
 */
export function quietLibraryConsole() {
  const libraryLog = [];
  for (const method of ["log", "info", "warn", "error", "debug"]) {
    console[method] = (...parts) => {
      libraryLog.push(parts.map(String).join(" "));
      if (libraryLog.length > 500) libraryLog.shift();
    };
  }
  return libraryLog;
}

/** Session.join of `model` with the library `client` (20 s at most); `socket` replaces the socket factory. */
export function honestJoin(client, model, { url, appId, name, password, socket }) {
  return withTimeout(
    client.Session.join({ appId, name, password, model, view: client.View, reflector: url, step: "auto", ...(socket ? { socket } : {}) }),
    20_000,
    "Session.join",
  );
}

/** A root model counting "probe/inc" events (and "probe/mark" markers, to compare replicas at one point). */
export function counterModel(client, classId) {
  class Counter extends client.Model {
    init() {
      this.count = 0;
      this.marks = 0;
      this.subscribe("probe", "inc", this.inc);
      this.subscribe("probe", "mark", this.mark);
    }
    inc() {
      this.count++;
    }
    mark() {
      this.marks++;
    }
  }
  Counter.register(classId);
  return Counter;
}

/** SHA-256 of each session's state right after the entry at which `ready(session)` first holds. */
export function hashesWhen(sessions, ready, timeoutMs = 10_000) {
  return withTimeout(
    Promise.all(
      sessions.map(
        (s) =>
          new Promise((resolve) => {
            if (ready(s)) return resolve(sha256(s.stateBytes()).toString("hex"));
            const stop = s.afterEntry(() => {
              if (!ready(s)) return;
              stop();
              resolve(sha256(s.stateBytes()).toString("hex"));
            });
          }),
      ),
    ),
    timeoutMs,
    "replicas reaching the marker",
  );
}

/**
 * The public ids a code version has (persistentId and sessionId, as the client API shows them),
 * learned by a throwaway join against a separate in-process reflector: they depend only on public
 * things (appId, name, options, code), not on the password.
 */
export async function learnPublicIds(versions, appId, name) {
  const { startReflector, silentLogger } = await import("@lockstep/reflector");
  const elsewhere = await startReflector({ port: 0, logger: silentLogger });
  try {
    const sessionIds = [];
    let persistentId;
    for (const { client, model } of versions) {
      const s = await honestJoin(client, model, { url: elsewhere.url, appId, name, password: "anything: public ids do not depend on it" });
      sessionIds.push(s.id);
      persistentId = s.persistentId;
      await withTimeout(s.leave(), 8000, "leave");
    }
    return { persistentId, sessionIds };
  } finally {
    await elsewhere.close();
  }
}
