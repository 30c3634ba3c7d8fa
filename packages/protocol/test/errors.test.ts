/**
 * Every error Lockstep throws extends one base, `LockstepError`, with the close code that applies
 * (if one does) as `code`: one representative per package, reached through its public entry point.
 */
import * as client from "@lockstep/client";
import * as reflector from "@lockstep/reflector";
import { CloseCode, LockstepError, ProtocolError, closeCodeName, decodeClientMessage, isCloseCode } from "../src/index";
import { DeserializationError, SerializationError, Unserializable } from "../../client/src/serializer/errors";

/** The error `run` throws (or rejects with); fails the test if it does not throw. */
async function caught(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error, but none was thrown");
}

test("the client and the reflector export the protocol's LockstepError and CloseCode, not copies", () => {
  expect(client.LockstepError).toBe(LockstepError);
  expect(reflector.LockstepError).toBe(LockstepError);
  expect(client.CloseCode).toBe(CloseCode);
  expect(reflector.CloseCode).toBe(CloseCode);
  expect(client.closeCodeName).toBe(closeCodeName);
  expect(reflector.closeCodeName).toBe(closeCodeName);
});

describe("LockstepError", () => {
  test("keeps a Lockstep close code, its name, the message and the cause", () => {
    const cause = new Error("underneath");
    const error = new LockstepError("refused", { code: CloseCode.AuthFailed, cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("LockstepError");
    expect(error.message).toBe("refused");
    expect(error.code).toBe(4008);
    expect(error.codeName).toBe("AuthFailed");
    expect(error.cause).toBe(cause);
    expect(String(error)).toBe("LockstepError: refused");
  });

  test("has no code or cause unless given, and ignores codes that are not Lockstep's", () => {
    const bare = new LockstepError("plain");
    expect(bare.code).toBeUndefined();
    expect(bare.codeName).toBeUndefined();
    expect("cause" in bare).toBe(false);
    // WebSocket's own close codes (1006: dropped) and unknown 4xxx codes are not a CloseCode.
    for (const code of [1000, 1006, 3999, 4999, 4099, -1, 4008.5]) {
      expect(new LockstepError("x", { code }).code).toBeUndefined();
      expect(isCloseCode(code)).toBe(false);
    }
    for (const code of Object.values(CloseCode)) {
      expect(new LockstepError("x", { code }).code).toBe(code);
      expect(isCloseCode(code)).toBe(true);
    }
    expect(isCloseCode("4008")).toBe(false);
  });
});

describe("@lockstep/protocol", () => {
  test("a frame of another version is a ProtocolError with code VersionMismatch", () => {
    const error = (() => {
      try {
        decodeClientMessage(new Uint8Array([9, 0x01]));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toBeInstanceOf(LockstepError);
    expect(error).toMatchObject({ name: "ProtocolError", code: CloseCode.VersionMismatch });
    expect((error as ProtocolError).codeName).toBe("VersionMismatch");
  });

  test("a ProtocolError defaults to code ProtocolError", () => {
    const error = new ProtocolError("bad frame");
    expect(error.code).toBe(CloseCode.ProtocolError);
    expect(error.codeName).toBe("ProtocolError");
  });
});

describe("@lockstep/client", () => {
  test("JoinError and SessionError carry a Lockstep close code as code, and every close code as closeCode", () => {
    const cause = new Error("socket");
    const refused = new client.JoinError("wrong password", { code: CloseCode.AuthFailed, cause });
    expect(refused).toBeInstanceOf(client.JoinError);
    expect(refused).toBeInstanceOf(LockstepError);
    expect(refused).toMatchObject({ name: "JoinError", code: CloseCode.AuthFailed, closeCode: 4008, codeName: "AuthFailed", cause });

    const dropped = new client.SessionError("connection lost", { code: 1006 });
    expect(dropped).toBeInstanceOf(LockstepError);
    expect(dropped).toMatchObject({ name: "SessionError", code: undefined, closeCode: 1006 });

    const damaged = new client.SessionError("damaged", { code: CloseCode.SessionDamaged });
    expect(damaged.code).toBe(CloseCode.SessionDamaged);
    expect(new client.JoinError("no options").code).toBeUndefined();
  });

  test("UsageError, ReplayError and DecryptionError are LockstepErrors without a code", () => {
    const errors = [new client.UsageError("misuse"), new client.ReplayError("again", "repeated", "view1"), new client.DecryptionError("tampered")];
    expect(errors.map((e) => e.name)).toEqual(["UsageError", "ReplayError", "DecryptionError"]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(LockstepError);
      expect(error.code).toBeUndefined();
    }
    expect(errors[1]).toMatchObject({ reason: "repeated", viewId: "view1" });
  });

  test("the serializer's errors are LockstepErrors", () => {
    const serialization = new SerializationError("cannot serialize a function at root.f", "root.f");
    const deserialization = new DeserializationError("truncated", 3);
    const unserializable = new Unserializable("a function", "");
    for (const error of [serialization, deserialization, unserializable]) expect(error).toBeInstanceOf(LockstepError);
    expect(serialization).toMatchObject({ name: "SerializationError", path: "root.f", code: undefined });
    expect(deserialization).toMatchObject({ name: "DeserializationError", offset: 3, message: "truncated (at byte 3)" });
    expect(unserializable.toPublic("root")).toBeInstanceOf(LockstepError);
  });
});

describe("@lockstep/reflector", () => {
  test("a bad option is a ReflectorError without a code", async () => {
    const error = await caught(() => reflector.startReflector({ port: 70_000 }));
    expect(error).toBeInstanceOf(reflector.ReflectorError);
    expect(error).toBeInstanceOf(LockstepError);
    expect(error).toMatchObject({ name: "ReflectorError", code: undefined });
  });

  test("an invalid key is a StorageError without a code; damage is a SessionDamagedError with code SessionDamaged", async () => {
    const store = reflector.createMemoryStore();
    try {
      const error = await caught(() => store.get("no//empty/segments"));
      expect(error).toBeInstanceOf(reflector.StorageError);
      expect(error).toBeInstanceOf(LockstepError);
      expect(error).toMatchObject({ name: "StorageError", code: undefined, damaged: false });
    } finally {
      await store.close();
    }
    const damaged = new reflector.SessionDamagedError("meta of session s1 is corrupt", { key: "sessions/s1/meta", sessionId: "s1" });
    expect(damaged).toBeInstanceOf(reflector.StorageError);
    expect(damaged).toBeInstanceOf(LockstepError);
    expect(damaged).toMatchObject({ name: "SessionDamagedError", code: CloseCode.SessionDamaged, codeName: "SessionDamaged", damaged: true, key: "sessions/s1/meta" });
    expect(reflector.isDamaged(new reflector.StorageError("wrapped", { cause: damaged }))).toBe(true);
  });
});
