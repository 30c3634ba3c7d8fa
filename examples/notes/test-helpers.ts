/** Test stand-ins shared by the notes tests (not part of the app). */
import type { TextField } from "./text-sync";

/** A textarea stand-in: a value and a selection that follows what `setSelectionRange` says. */
export class FakeField implements TextField {
  value = "";
  selectionStart = 0;
  selectionEnd = 0;

  setSelectionRange(start: number, end: number): void {
    this.selectionStart = Math.min(start, this.value.length);
    this.selectionEnd = Math.max(this.selectionStart, Math.min(end, this.value.length));
  }

  /** What a user does: replace the selection `[start, end)` with `text`, caret after it. */
  type(start: number, end: number, text: string): void {
    this.value = this.value.slice(0, start) + text + this.value.slice(end);
    this.setSelectionRange(start + text.length, start + text.length);
  }
}
