import { CloseCode, ProtocolError, decodeJoinAuth, encodeJoinAuth } from "../src/index";

const token = new Uint8Array(32).fill(1);
const verifier = new Uint8Array(32).fill(2);
const check = new Uint8Array(57).fill(3);

test("JoinAuth round trip and golden layout", () => {
  const bytes = encodeJoinAuth({ token, verifier, check });
  expect(bytes[0]).toBe(1);
  expect(bytes[1]).toBe(32);
  expect(bytes[34]).toBe(32);
  expect(bytes[67]).toBe(57);
  expect(bytes.length).toBe(1 + 1 + 32 + 1 + 32 + 1 + 57);
  expect(decodeJoinAuth(bytes)).toEqual({ token, verifier, check });
});

function expectAuthFailed(bytes: Uint8Array): void {
  let caught: unknown;
  try {
    decodeJoinAuth(bytes);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as ProtocolError).code).toBe(CloseCode.AuthFailed);
}

test("missing, truncated, wrong-version, short-token and trailing-byte auth is AuthFailed", () => {
  const good = encodeJoinAuth({ token, verifier, check });
  expectAuthFailed(new Uint8Array(0));
  for (let n = 1; n < good.length; n++) expectAuthFailed(good.subarray(0, n));
  const wrongVersion = good.slice();
  wrongVersion[0] = 2;
  expectAuthFailed(wrongVersion);
  expectAuthFailed(encodeJoinAuth({ token: token.subarray(0, 31), verifier, check }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check: new Uint8Array(0) }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check: new Uint8Array(300) }));
  expectAuthFailed(Uint8Array.from([...good, 0]));
});
