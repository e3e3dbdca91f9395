/** What the engine needs to know to sync one table: an entity is data, not code. */

/** A foreign key of the entity: its columns and the parent's key columns they reference. */
export interface ParentReference {
  /** The parent entity's name. */
  readonly entity: string;
  /** Child column → parent key column; together they cover the parent's whole key. */
  readonly columns: Readonly<Record<string, string>>;
}

export interface EntityMetadata {
  /** Stable name: CLI `--entities`, metric dimension `Entity`, result rows. Lower snake case. */
  readonly name: string;
  /** Table name, the same on the remote and on the site (resolved through search_path). */
  readonly table: string;
  /** The columns that identify a row (one, or several for a composite key). */
  readonly keyColumns: readonly string[];
  /** Every synced column, key columns included, in the order rows are read and written. */
  readonly columns: readonly string[];
  /** Remote rows belong to the tenant whose id is in this column. */
  readonly tenantColumn?: string;
  /**
   * A custom remote query for entities scoped through another table. `$1` is the tenant id
   * (passed as a value, never spliced in as text); it must select the entity's columns.
   */
  readonly remoteQuery?: string;
  /** Foreign keys; they order the work (parents upserted first, deleted last). */
  readonly parents?: readonly ParentReference[];
}
