// The app's IndexedDB: the visit queue and a small key-value store, shared by pages and the service worker.

const DB_NAME = "gridwork";
export const STORE = "visits";
export const META = "meta";

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: "id" });
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Run `work(store)` in one transaction on `storeName` (or `work(...stores)` on a list of store
 * names); resolves with its request's result once committed. */
export async function run(storeName, mode, work) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(storeName, mode);
    const names = Array.isArray(storeName) ? storeName : [storeName];
    const result = work(...names.map((name) => tx.objectStore(name)));
    tx.oncomplete = () => { db.close(); resolve(result && "result" in result ? result.result : result); };
    // A write the device has no room for is aborted at commit (QuotaExceededError): an abort
    // event and no error event. Unheard, the caller waited for ever (the visit form stuck on
    // "locating", a sync that never ended and held back every later one).
    const failed = () => {
      db.close();
      reject(tx.error || new DOMException("The transaction was aborted.", "AbortError"));
    };
    tx.onerror = failed;
    tx.onabort = failed;
  });
}

export function setMeta(key, value) {
  return run(META, "readwrite", (store) => store.put(value, key));
}
export function getMeta(key) {
  return run(META, "readonly", (store) => store.get(key));
}
