/**
 * Shared by the persistence integration tests: code versions of the seeds' document editor, the
 * console capture of `[Lockstep]` lines, and v1's save.
 */
import type { Model as ModelType } from "../src/index";

export type ClientModule = typeof import("../src/index");
export type Doc = { title: string; body: string; tags?: string[] };

/**
 * One code version of the seeds' document editor, loaded into its own module registry so that
 * several versions can live in one test process. v1 saves Map-based documents as entry arrays
 * (format 1); v2 adds tags and metadata (format 2) and follows the seeds' SafeModel pattern.
 */
export function editor(version: 1 | 2 | 3): { client: ClientModule; cls: typeof ModelType } {
  let out!: { client: ClientModule; cls: typeof ModelType };
  jest.isolateModules(() => {
    const client = require("../src/index") as ClientModule;
    class DocumentEditorV1 extends client.Model {
      documents = new Map<string, Doc>();
      restoredFrom: unknown = null;
      override init(_options: unknown, persisted?: { version: number; documents: Array<[string, Doc]> }): void {
        if (persisted) {
          this.documents = new Map(persisted.documents);
          this.restoredFrom = persisted.version;
        }
        this.subscribe("docs", "add", this.addDocument);
      }
      addDocument(doc: Doc & { id: string }): void {
        this.documents.set(doc.id, { title: doc.title, body: doc.body });
        this.save();
      }
      save(): void {
        this.persistSession(() => ({ version: 1, documents: Array.from(this.documents.entries()) }));
      }
    }
    class DocumentEditorV2 extends client.Model {
      documents = new Map<string, Doc>();
      metadata: Record<string, unknown> = {};
      loadingPersistentData?: boolean;
      loadingPersistentDataErrored?: boolean;
      override init(_options: unknown, persisted?: unknown): void {
        if (persisted) {
          delete this.loadingPersistentDataErrored;
          this.loadingPersistentData = true;
          try {
            this.fromSavedData(persisted as { version?: number; documents?: Array<[string, Doc]>; metadata?: Record<string, unknown> });
          } catch {
            this.loadingPersistentDataErrored = true;
            this.documents = new Map();
          } finally {
            delete this.loadingPersistentData;
          }
        }
        this.subscribe("docs", "add", this.addDocument);
      }
      fromSavedData(persisted: { version?: number; documents?: Array<[string, Doc]>; metadata?: Record<string, unknown> }): void {
        if (!persisted.version) throw new Error("Missing version in persistent data");
        if (persisted.version > 2) throw new Error(`Unsupported version: ${persisted.version}`);
        // Format 1 had no tags: migrate every document.
        const docs = (persisted.documents ?? []).map(([id, d]): [string, Doc] => [id, { ...d, tags: d.tags ?? [] }]);
        this.documents = new Map(docs);
        this.metadata = { ...(persisted.metadata ?? {}), migratedFrom: persisted.version };
      }
      addDocument(doc: Doc & { id: string }): void {
        this.documents.set(doc.id, { title: doc.title, body: doc.body, tags: doc.tags ?? [] });
        this.save();
      }
      save(): void {
        if (this.loadingPersistentData || this.loadingPersistentDataErrored) return;
        this.persistSession(() => ({ version: 2, documents: Array.from(this.documents.entries()), metadata: this.metadata }));
      }
    }
    // v3 only differs from v2 in its source text: a third code version of the same app.
    class DocumentEditorV3 extends DocumentEditorV2 {
      readonly generation = 3;
    }
    const cls = version === 1 ? DocumentEditorV1 : version === 2 ? DocumentEditorV2 : DocumentEditorV3;
    cls.register("PersistInt.DocumentEditor");
    out = { client, cls };
  });
  return out;
}

export const opts = { appId: "test.lockstep.persist", password: "correct horse" };

/** Captures `[Lockstep]` console lines; `next(prefix)` resolves when one starting with it is printed. */
export function sessionLog(): { lines: string[]; next(prefix: string): Promise<string> } {
  const lines: string[] = [];
  const waiters: Array<[string, (line: string) => void]> = [];
  jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    const line = args.map(String).join(" ");
    lines.push(line);
    for (const [prefix, resolve] of waiters.splice(0)) {
      if (line.startsWith(prefix)) resolve(line);
      else waiters.push([prefix, resolve]);
    }
  });
  return {
    lines,
    next: (prefix) => new Promise((resolve) => waiters.push([prefix, resolve])),
  };
}

export function add(session: { view: { publish(scope: string, event: string, data: unknown): void } }, id: string, title: string): void {
  session.view.publish("docs", "add", { id, title, body: `${title} body` });
}

/** v1 writes three documents and saves them (the automatic, delayed save); everyone leaves. */
export async function v1Saves(url: string, name: string, log: ReturnType<typeof sessionLog>): Promise<{ sessionId: string; persistentId: string }> {
  const v1 = editor(1);
  const a = await v1.client.Session.join({ ...opts, name, model: v1.cls as never, view: v1.client.View, reflector: url, debug: "session" });
  const b = await v1.client.Session.join({ ...opts, name, model: v1.cls as never, view: v1.client.View, reflector: url });
  const saved = log.next("[Lockstep] Persistent data saved");
  add(a, "d1", "Plans");
  add(b, "d2", "Notes");
  add(a, "d3", "Ideas");
  expect(await saved).toMatch(/^\[Lockstep\] Persistent data saved \(\d+B\)$/);
  const ids = { sessionId: a.id, persistentId: a.persistentId };
  await Promise.all([a.leave(), b.leave()]);
  return ids;
}

