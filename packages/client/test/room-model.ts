import { Model } from "../src/index";

/** Who is here (from view-join/view-exit, in order) and what was written. */
export class Room extends Model {
  present: string[] = [];
  joins: string[] = [];
  exits: string[] = [];
  lines: string[] = [];
  override init(): void {
    this.subscribe(this.sessionId, "view-join", this.joined);
    this.subscribe(this.sessionId, "view-exit", this.exited);
    this.subscribe("room", "write", this.write);
  }
  joined(view: { viewId: string } | string): void {
    const id = typeof view === "string" ? view : view.viewId;
    this.joins.push(id);
    this.present.push(id);
  }
  exited(view: { viewId: string } | string): void {
    const id = typeof view === "string" ? view : view.viewId;
    this.exits.push(id);
    this.present = this.present.filter((v) => v !== id);
  }
  write(line: string): void {
    this.lines.push(line);
  }
}
Room.register("Test.Reconnect.Room");
