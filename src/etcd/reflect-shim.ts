/**
 * @peculiar/x509 pulls in tsyringe, which refuses to load without the Reflect metadata API
 * (normally the `reflect-metadata` package, which we do not depend on). It only stores and
 * reads back constructor parameter types, so a WeakMap-backed subset is enough. Import this
 * module before @peculiar/x509.
 */
type MetaStore = WeakMap<object, Map<unknown, unknown>>;
const R = Reflect as unknown as Record<string, unknown>;

if (typeof R.getMetadata !== 'function') {
  const store: MetaStore = new WeakMap();
  const own = (target: object, create: boolean) => {
    let m = store.get(target);
    if (!m && create) store.set(target, (m = new Map()));
    return m;
  };
  R.defineMetadata = (key: unknown, value: unknown, target: object) => {
    own(target, true)!.set(key, value);
  };
  R.getOwnMetadata = (key: unknown, target: object) => own(target, false)?.get(key);
  R.getMetadata = (key: unknown, target: object) => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t) as object | null) {
      const m = own(t, false);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  R.hasMetadata = (key: unknown, target: object) =>
    (R.getMetadata as (k: unknown, t: object) => unknown)(key, target) !== undefined;
  R.metadata = (key: unknown, value: unknown) => (target: object) => {
    own(target, true)!.set(key, value);
  };
}

export {};
