import { CloseCode } from "@lockstep/protocol";
import { classifyClose, isRetryable } from "../src/session/close-verdict";

const joined = { joining: false, joinedOnce: true };
const joining = { joining: true, joinedOnce: false };
const close = (code: number, reason = "") => ({ code, reason });
const error = (code: number, message: string) => ({ code, message });

describe("classifyClose", () => {
  test("SessionDamaged and TokenRejected end a running session: rejoining would only fail again", () => {
    expect(isRetryable(CloseCode.SessionDamaged)).toBe(false);
    expect(isRetryable(CloseCode.TokenRejected)).toBe(false);
    expect(classifyClose(close(CloseCode.SessionDamaged), error(CloseCode.SessionDamaged, "its log does not continue its snapshot"), joined)).toEqual({
      kind: "fatal",
      code: CloseCode.SessionDamaged,
      message: "the session's stored data is damaged; the reflector's operator must restore it (its log does not continue its snapshot (SessionDamaged))",
    });
    const rejected = classifyClose(close(CloseCode.TokenRejected), error(CloseCode.TokenRejected, "bad signature"), joined);
    expect(rejected).toMatchObject({ kind: "fatal", code: CloseCode.TokenRejected });
    expect(rejected.kind === "fatal" && rejected.message).toMatch(/^the reflector refused the app token: bad signature \(TokenRejected\)\. Pass Session\.join\(\{ token \}\)/);
  });

  test.each([
    ["TokenExpired", CloseCode.TokenExpired],
    ["SlowReader", CloseCode.SlowReader],
    ["LogFull", CloseCode.LogFull],
    ["Overloaded", CloseCode.Overloaded],
    ["RateLimited", CloseCode.RateLimited],
  ])("%s rejoins a session that was joined (with backoff)", (name, code) => {
    expect(isRetryable(code)).toBe(true);
    expect(classifyClose(close(code), error(code, "try later"), joined)).toEqual({ kind: "rejoin", code, detail: `try later (${name})` });
    // Without the Error frame, the close code alone decides the same.
    expect(classifyClose(close(code, "bye"), undefined, joined)).toEqual({ kind: "rejoin", code, detail: `close code ${code}: bye` });
  });

  test("an expired token given as a string ends the session: only a token function can renew it", () => {
    const verdict = classifyClose(close(CloseCode.TokenExpired), error(CloseCode.TokenExpired, "exp passed"), { ...joined, renewableToken: false });
    expect(verdict).toMatchObject({ kind: "fatal", code: CloseCode.TokenExpired });
    expect(verdict.kind === "fatal" && verdict.message).toMatch(/pass Session\.join\(\{ token \}\) a function that fetches a fresh token/);
    expect(classifyClose(close(CloseCode.TokenExpired), undefined, { ...joined, renewableToken: true })).toMatchObject({ kind: "rejoin" });
  });

  test.each([
    [CloseCode.TokenExpired, /^the app token has expired or is not valid yet \(.*\): have the token function return a fresh token/],
    [CloseCode.TokenRejected, /^the reflector refused the app token: /],
    [CloseCode.SessionDamaged, /^the session's stored data is damaged; the reflector's operator must restore it/],
    [CloseCode.Overloaded, /^the reflector is at capacity \(.*\): join again in a moment$/],
    [CloseCode.RateLimited, /^the reflector is rate limiting this client \(.*\): wait a moment, then join again$/],
  ])("a first join refused with %i fails with the code and says what to do", (code, message) => {
    const verdict = classifyClose(close(code), error(code, "refused"), joining);
    expect(verdict).toMatchObject({ kind: "fatal", code });
    expect(verdict.kind === "fatal" && verdict.message).toMatch(message);
  });

  test("a refused password while joining is an auth failure; other old codes keep their verdicts", () => {
    expect(classifyClose(close(CloseCode.AuthFailed), error(CloseCode.AuthFailed, "no"), joining)).toEqual({ kind: "authFailed", detail: "no (AuthFailed)" });
    expect(classifyClose(close(CloseCode.DuplicateView), undefined, joined)).toMatchObject({ kind: "fatal", message: expect.stringContaining("rejoined the session on another connection") });
    expect(classifyClose(close(1006), undefined, joined)).toEqual({ kind: "rejoin", code: 1006, detail: "close code 1006" });
    expect(classifyClose(close(CloseCode.ServerShutdown), undefined, joining)).toMatchObject({ kind: "fatal", message: "connection to the reflector closed: close code 4007" });
  });
});
