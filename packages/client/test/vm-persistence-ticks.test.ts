import { Model } from "../src/kernel/model";
import { persist } from "../src/kernel/persist-spec";
import { serializeVM } from "../src/session/boot";
import { registry } from "../src/kernel/registry";
import { makeVM } from "./vm-helpers";

/**
 * Ticks only advance time and are not part of the stream a late joiner replays. Whatever ticks a
 * replica saw, its persisted-data decisions (when a save is taken, at which seq, with which data)
 * must match a replica that saw none: they are part of the replicated state.
 */
class Diary extends Model {
  static persistDelay = 250;
  entries: string[] = [];
  beats = 0;
  override init(): void {
    this.subscribe("diary", "write", this.write);
    this.future(100).beat();
  }
  write(text: string): void {
    this.entries.push(text);
    this.persistSession(() => ({ entries: this.entries, beats: this.beats }));
  }
  beat(): void {
    this.beats++;
    this.future(100).beat();
  }
}
Diary.register("VmPersistTicks.Diary");

class Counter extends Model {
  static persistent = persist({ fields: { n: 0 }, delayMs: 120 });
  n = 0;
  override init(): void {
    this.future(70).bump();
  }
  bump(): void {
    this.n++;
    this.future(70).bump();
  }
}
Counter.register("VmPersistTicks.Counter");

for (const cls of [Diary, Counter]) {
  test(`${cls.name}: a replica that saw ticks and one that saw none take the same saves at the same points`, () => {
    const ticked = makeVM("s-ticks");
    const plain = makeVM("s-ticks");
    ticked.root(cls);
    plain.root(cls);
    const script: Array<[number, string]> = [[130, "a"], [180, "b"], [900, "c"], [960, "d"], [2400, "e"]];
    let t = 0;
    for (const [time, text] of script) {
      // The ticked replica gets a tick every 16 ms up to just before the entry.
      for (t += 16; t < time; t += 16) ticked.tick(t);
      ticked.relay(time, "diary", "write", text);
      plain.relay(time, "diary", "write", text);
      expect(Buffer.from(serializeVM(ticked.vm, registry)).equals(Buffer.from(serializeVM(plain.vm, registry)))).toBe(true);
    }
    expect(ticked.errors).toEqual([]);
  });
}
