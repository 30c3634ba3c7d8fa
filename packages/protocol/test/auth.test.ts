import { CloseCode, ProtocolError, decodeJoinAuth, encodeJoinAuth } from "../src/index";

const token = new Uint8Array(32).fill(1);
const verifier = new Uint8Array(32).fill(2);
const check = new Uint8Array(57).fill(3);
const slot = "A".repeat(43);
const slotToken = new Uint8Array(32).fill(4);
const noSlot = { slot: "", slotToken: new Uint8Array(0) };
const noApp = { appToken: "", appId: "", name: "" };

test("JoinAuth round trip and golden layout (version 3)", () => {
  const bytes = encodeJoinAuth({ token, verifier, check, slot, slotToken });
  expect(bytes[0]).toBe(3);
  expect(bytes[1]).toBe(32);
  expect(bytes[34]).toBe(32);
  expect(bytes[67]).toBe(57);
  expect(bytes[125]).toBe(43);
  expect(bytes[169]).toBe(32);
  // Three empty strings: no app token, appId or name.
  expect([...bytes.subarray(202)]).toEqual([0, 0, 0]);
  expect(bytes.length).toBe(1 + 1 + 32 + 1 + 32 + 1 + 57 + 1 + 43 + 1 + 32 + 3);
  expect(decodeJoinAuth(bytes)).toEqual({ token, verifier, check, slot, slotToken, ...noApp });
  expect(decodeJoinAuth(encodeJoinAuth({ token, verifier, check, ...noSlot }))).toEqual({ token, verifier, check, ...noSlot, ...noApp });
  const app = { appToken: "eyJhbGciOiJIUzI1NiJ9.e30.sig", appId: "com.example.chat", name: "room 1" };
  expect(decodeJoinAuth(encodeJoinAuth({ token, verifier, check, slot, slotToken, ...app }))).toEqual({ token, verifier, check, slot, slotToken, ...app });
});

test("version 1 (before persistence) and version 2 (before app tokens) JoinAuth still decode", () => {
  const v1 = Uint8Array.from([1, 32, ...token, 32, ...verifier, 57, ...check]);
  expect(decodeJoinAuth(v1)).toEqual({ token, verifier, check, ...noSlot, ...noApp });
  const v2 = Uint8Array.from([2, 32, ...token, 32, ...verifier, 57, ...check, 43, ...new TextEncoder().encode(slot), 32, ...slotToken]);
  expect(decodeJoinAuth(v2)).toEqual({ token, verifier, check, slot, slotToken, ...noApp });
});

test("an appId or name without an app token is AuthFailed", () => {
  expectAuthFailed(encodeJoinAuth({ token, verifier, check, ...noSlot, appId: "com.example" }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check, ...noSlot, name: "room" }));
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
  wrongVersion[0] = 4;
  expectAuthFailed(wrongVersion);
  expectAuthFailed(encodeJoinAuth({ token: token.subarray(0, 31), verifier, check, slot, slotToken }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check: new Uint8Array(0), slot, slotToken }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check: new Uint8Array(300), slot, slotToken }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check, slot: "not an id!", slotToken }));
  expectAuthFailed(encodeJoinAuth({ token, verifier, check, slot, slotToken: slotToken.subarray(0, 31) }));
  expectAuthFailed(Uint8Array.from([...good, 0]));
});
