/**
 * Workspaces: the `X-DashScope-WorkSpace` header names the workspace a call runs in (Model
 * Studio API reference, request headers; the official SDKs send it as `workspace=`). An API
 * key belongs to one workspace. UNCERTAIN: Model Studio does not document the answer to an
 * unknown workspace or to a key of another workspace; the emulator answers as it documents for
 * a key used against another workspace's dedicated host (the key is refused: 401
 * `InvalidApiKey`), see the README.
 */

/** The workspaces the emulator knows. */
export class Workspaces {
  readonly #known = new Set<string>();

  constructor(ids: readonly string[]) {
    for (const id of ids) this.add(id);
  }

  add(id: string): void {
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]+$/.test(id))
      throw new TypeError('a workspace id must be letters, digits, "-" and "_"');
    this.#known.add(id);
  }

  get ids(): readonly string[] {
    return [...this.#known];
  }

  /**
   * Whether a key bound to `keyWorkspace` (undefined: not bound, the account's default
   * workspace, which may call any of the account's workspaces) may call with the
   * `X-DashScope-WorkSpace` header `requested`.
   */
  allows(requested: string | undefined, keyWorkspace: string | undefined): boolean {
    if (requested === undefined) return true;
    if (!this.#known.has(requested)) return false;
    return keyWorkspace === undefined || keyWorkspace === requested;
  }
}
