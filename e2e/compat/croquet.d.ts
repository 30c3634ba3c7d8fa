// The compatibility apps import `@croquet/croquet`; the suite builds them with that import aliased
// to `@lockstep/client`, and the type-check sees the same alias here.
declare module "@croquet/croquet" {
  export * from "@lockstep/client";
}
