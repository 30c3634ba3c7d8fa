import { CloseCode, ProtocolError, decodeJoinAuth, encodeJoinAuth } from "../src/index";

const token = new Uint8Array(32).fill(1);
const verifier = new Uint8Array(32).fill(2);
const check = new Uint8Array(57).fill(3);
const slot = "A".repeat(43);
const slotToken = new Uint8Array(32).fill(4);
const noSlot = { slot: "", slotToken: new Uint8Array(0) };

test("JoinAuth round trip and golden layout", () => {
  const bytes = encodeJoinAuth({ token, verifier, check, slot, slotToken });
  expect(bytes[0]).toBe(2);
  expect(bytes[1]).toBe(32);
  expect(bytes[34]).toBe(32);
  expect(bytes[67]).toBe(57);
  expect(bytes[125]).toBe(43);
  expect(bytes[169]).toBe(32);
  expect(bytes.length).toBe(1 + 1 + 32 + 1 + 32 + 1 + 57 + 1 + 43 + 1 + 32);
  expect(decodeJoinAuth(bytes)).toEqual({ token, verifier, check, slot, slotToken });
  expect(decodeJoinAuth(encodeJoinAuth({ token, verifier, check, ...noSlot }))).toEqual({ token, verifier, check, ...noSlot });
});

test("a version 1 JoinAuth (before persistence) still decodes, with no slot", () => {
  const v1 = Uint8Array.from([1, 32, ...token, 32, ...verifier, 57, ...check]);
  expect(decodeJoinAuth(v1)).toEqual({ token, verifier, check, ...noSlot });
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
  const good = encodeJoinAuth({ token, verifier, check, slot, slotToken });
  expectAuthFailed(new Uint8Array(0));
  for (let n = 1; n < good.length; n++) expectAuthFailed(good.subarray(0, n));
  const wrongVersion = good.slice();
  wrongVersion[0] = 3;
  expectAuthFailed(wrongVersion);
  expectAuthFailed(encodeJoinAuth({ token: token.subarray(0, 31), verifier, check, slot, slotToken }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check: new Uint8Array(0), slot, slotToken }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check: new Uint8Array(300), slot, slotToken }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check, slot: "not an id!", slotToken }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check, slot, slotToken: slotToken.subarray(0, 31) }));
  expectAuthFailed(Uint8Array.from([...good, 0]));
});
