/** Docker's list filters (`filters={"key":["value",…]}`): checks shared by every list endpoint. */
import { invalidArgument } from './errors.js';

/** Throws Docker's `invalid filter '<key>'` for a key not in `allowed`. */
export function checkFilterKeys(filters: Record<string, string[]>, allowed: readonly string[]): void {
  for (const k of Object.keys(filters)) if (!allowed.includes(k)) throw invalidArgument(`invalid filter '${k}'`);
}
