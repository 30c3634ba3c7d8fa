import { joinAuth } from "../src/session/admission";
import { deriveSessionKeys } from "../src/session/crypto";
import { JoinError, SessionError } from "../src/errors";
import { checkSyncAnswer } from "../src/session/join";

const names = { name: "room", appId: "test.app" };

describe("checkSyncAnswer", () => {
  test("a Sync must name this client's wire id (not the public sessionId) and view, with a check this password opens", async () => {
    const keys = await deriveSessionKeys("pw", "pid", "sid");
    const check = joinAuth(keys, "sid", { slot: "", token: new Uint8Array(0) }).check;
    expect(() => checkSyncAnswer({ sessionId: keys.wireSessionId, viewId: "v1", auth: check }, names, "sid", "v1", keys)).not.toThrow();
    // The public sessionId is not what the reflector knows the session by.
    expect(() => checkSyncAnswer({ sessionId: "sid", viewId: "v1", auth: check }, names, "sid", "v1", keys)).toThrow(SessionError);
    expect(() => checkSyncAnswer({ sessionId: "sid", viewId: "v1", auth: check }, names, "sid", "v1", keys)).toThrow(
      `reflector answered for session sid/v1, expected ${keys.wireSessionId}/v1`,
    );
    expect(() => checkSyncAnswer({ sessionId: keys.wireSessionId, viewId: "v2", auth: check }, names, "sid", "v1", keys)).toThrow(SessionError);
  });

  test("a check envelope of another password fails with a JoinError saying the reflector misbehaves", async () => {
    const keys = await deriveSessionKeys("pw", "pid", "sid");
    const other = await deriveSessionKeys("other", "pid", "sid");
    const foreign = joinAuth(other, "sid", { slot: "", token: new Uint8Array(0) }).check;
    const attempt = () => checkSyncAnswer({ sessionId: keys.wireSessionId, viewId: "v1", auth: foreign }, names, "sid", "v1", keys);
    expect(attempt).toThrow(JoinError);
    expect(attempt).toThrow(/^wrong password for session "room" of test\.app \(sessionId sid\): .*the reflector is misbehaving; nothing was joined$/);
  });
});
