/** One group: a header and tabs for members, join requests, files, pending deliveries and the audit log. */
import { errorMessage } from '../api.ts';
import { ErrorNotice } from '../components/field.tsx';
import { Tabs, type TabDef } from '../components/tabs.tsx';
import { href } from '../router.ts';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { errorCode } from '../api.ts';
import { MembersTab } from './group-members-tab.tsx';
import { RequestsTab } from './group-requests-tab.tsx';
import { FilesTab } from './group-files-tab.tsx';
import { PendingTab } from './group-pending-tab.tsx';
import { AuditTab } from './group-audit-tab.tsx';

/** The group page for `name`, showing `tab`. */
export function GroupPage({ name, tab }: { name: string; tab: string }) {
  const { api, user } = useSession();
  const group = useLoad((signal) => api.call('getGroup', { params: { group: name }, signal }), [api, name]);
  const g = group.data?.group;
  if (group.error) {
    const notFound = errorCode(group.error) === ErrorCode.GROUP_NOT_FOUND || errorCode(group.error) === ErrorCode.NOT_FOUND;
    return (
      <section>
        <h1>{notFound ? 'Group not found' : name}</h1>
        <ErrorNotice error={notFound ? `There is no group called “${name}”.` : errorMessage(group.error)} />
        <p>
          <a href={href('groups')}>All groups</a>
        </p>
      </section>
    );
  }
  if (!g) return <p aria-busy="true">Loading…</p>;
  const manage = Boolean(user?.isAdmin || g.myRole === 'owner');
  const isMember = g.myRole !== null;
  if (!isMember && !user?.isAdmin) {
    return (
      <section>
        <h1>{g.name}</h1>
        <p className="notice">
          You are not a member of this group. <a href={href('mine')}>Ask to join it from My groups</a>.
        </p>
      </section>
    );
  }
  const tabs: TabDef[] = [
    { id: 'members', label: 'Members' },
    ...(manage ? [{ id: 'requests', label: 'Join requests' }] : []),
    { id: 'files', label: 'Files' },
    { id: 'pending', label: 'Pending' },
    ...(manage ? [{ id: 'audit', label: 'Audit log' }] : []),
  ];
  const active = tabs.some((t) => t.id === tab) ? tab : 'members';
  return (
    <>
      <p className="crumbs">
        <a href={href('groups')}>Groups</a> / <span>{g.name}</span>
      </p>
      <h1>
        {g.name}{' '}
        <span className="subtle mono">
          {g.multicastAddress}:{g.multicastPort}
        </span>
      </h1>
      <p className="subtle">
        {g.memberCount} member{g.memberCount === 1 ? '' : 's'} · your role: {g.myRole ?? 'admin (not a member)'}
      </p>
      <Tabs base={['groups', g.name]} tabs={tabs} active={active} label={`Sections of ${g.name}`} />
      <div className="tab-panel">
        {active === 'members' && <MembersTab group={g.name} manage={manage} onChange={group.reload} />}
        {active === 'requests' && <RequestsTab group={g.name} onChange={group.reload} />}
        {active === 'files' && <FilesTab group={g.name} manage={manage} />}
        {active === 'pending' && <PendingTab group={g.name} manage={manage} />}
        {active === 'audit' && <AuditTab group={g.name} />}
      </div>
    </>
  );
}
