import { StorageError } from "@lockstep/reflector";
import { runBlobStoreConformance } from "@lockstep/test-support";
import { createRedisStore, type RedisCommand, type RedisLike } from "./redis-store";

/**
 * Just enough of Redis, in memory: strings, sorted sets with every score 0 (ordered by bytes, as
 * Redis orders them), `ZRANGEBYLEX` bounds, and `MULTI … EXEC` applied in one step. Like a real
 * server it stores copies and answers asynchronously.
 */
class FakeRedis implements RedisLike {
  readonly strings = new Map<string, Uint8Array>();
  readonly sets = new Map<string, Set<string>>();
  failNext: Error | undefined;

  async getBuffer(key: string): Promise<Uint8Array | null> {
    await this.#roundTrip();
    const value = this.strings.get(key);
    return value === undefined ? null : Buffer.from(value);
  }

  async zrangebylex(key: string, min: string, max: string): Promise<string[]> {
    await this.#roundTrip();
    const members = [...(this.sets.get(key) ?? [])].sort(byBytes);
    return members.filter((m) => aboveMin(m, min) && belowMax(m, max));
  }

  async multi(commands: readonly RedisCommand[]): Promise<void> {
    await this.#roundTrip();
    for (const command of commands) {
      switch (command[0]) {
        case "set":
          this.strings.set(command[1], command[2].slice());
          break;
        case "del":
          for (const key of command.slice(1) as string[]) this.strings.delete(key);
          break;
        case "zadd": {
          const set = this.sets.get(command[1]) ?? new Set<string>();
          set.add(command[3]);
          this.sets.set(command[1], set);
          break;
        }
        case "zrem":
          for (const member of command.slice(2) as string[]) this.sets.get(command[1])?.delete(member);
          break;
      }
    }
  }

  async #roundTrip(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) throw failure;
  }
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

function aboveMin(member: string, min: string): boolean {
  if (min === "-") return true;
  const c = byBytes(member, min.slice(1));
  return min.startsWith("[") ? c >= 0 : c > 0;
}

function belowMax(member: string, max: string): boolean {
  if (max === "+") return true;
  const c = byBytes(member, max.slice(1));
  return max.startsWith("[") ? c <= 0 : c < 0;
}

runBlobStoreConformance("redis example (in-memory fake)", async () => ({ store: createRedisStore(new FakeRedis()), cleanup: async () => undefined }));

describe("redis example store", () => {
  test("keeps values and the key index under its namespace", async () => {
    const redis = new FakeRedis();
    const store = createRedisStore(redis, { namespace: "app1:" });
    await store.put("sessions/S1/meta", new Uint8Array([1]));
    expect([...redis.strings.keys()]).toEqual(["app1:v:sessions/S1/meta"]);
    expect([...(redis.sets.get("app1:keys") ?? [])]).toEqual(["sessions/S1/meta"]);
    await store.delete("sessions/S1/meta");
    expect(redis.strings.size).toBe(0);
    expect(redis.sets.get("app1:keys")?.size).toBe(0);
    await store.close();
  });

  test("a client error becomes a StorageError with the cause chained", async () => {
    const redis = new FakeRedis();
    const store = createRedisStore(redis);
    const cause = new Error("connect ECONNREFUSED 127.0.0.1:6379");
    redis.failNext = cause;
    const error = await store.get("k").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/cannot read "k" in Redis: connect ECONNREFUSED.*check that Redis is reachable/);
    expect((error as Error).cause).toBe(cause);
    await store.close();
  });
});
