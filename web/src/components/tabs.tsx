/**
 * Tabs as links (each tab has its own URL, so a tab can be bookmarked and the back button works), marked up as
 * a navigation with aria-current on the active one.
 */
import { href } from '../router.ts';

/** One tab: its URL segment and its label. */
export interface TabDef {
  id: string;
  label: string;
}

/** A row of tabs under `base` route segments. */
export function Tabs({ base, tabs, active, label }: { base: string[]; tabs: TabDef[]; active: string; label: string }) {
  return (
    <nav className="tabs" aria-label={label}>
      {tabs.map((t) => (
        <a key={t.id} href={href(...base, t.id)} aria-current={t.id === active ? 'page' : undefined} className="tab">
          {t.label}
        </a>
      ))}
    </nav>
  );
}
