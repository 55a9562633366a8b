/**
 * A table in its scrolling wrapper with a header row of column headings; rows go in as children. A heading can
 * be visible text or a name only screen readers get (an actions column whose cells are buttons).
 */
import type { ReactNode } from 'react';

/** A column heading: its text, or `{ srOnly }` for a heading announced to screen readers only. */
export type Column = string | { srOnly: string };

/** A `.table-wrap` table with `columns` as headings (false/null/undefined ones left out) and `children` as rows. */
export function DataTable({
  columns,
  label,
  className,
  children,
}: {
  columns: readonly (Column | false | null | undefined)[];
  label?: string;
  className?: string;
  children: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className={className} aria-label={label}>
        <thead>
          <tr>
            {columns.map((c, i) =>
              !c ? null : typeof c === 'string' ? (
                <th scope="col" key={i}>
                  {c}
                </th>
              ) : (
                <th scope="col" key={i}>
                  <span className="sr-only">{c.srOnly}</span>
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
