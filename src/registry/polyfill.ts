/**
 * `Promise.withResolvers` for Node 20 (it arrived in Node 22 / V8 12.2). js-libp2p 3.x and its
 * modules call it at run time; Node 20 is in `engines`, so the registry loads this module
 * before any libp2p one (src/registry/node.ts imports it first). A no-op where it exists.
 */
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>(): Resolvers<T> {
      let resolve!: Resolvers<T>['resolve'];
      let reject!: Resolvers<T>['reject'];
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

export const promiseWithResolversInstalled = typeof P.withResolvers === 'function';
