/**
 * The app shell: session, live connection, header navigation and the page for the current hash route.
 * Admin pages are not linked for non-admins, and a typed admin URL shows an "admins only" message.
 */
import { useEffect, type ReactNode } from 'react';
import { SessionProvider, useSession } from './session.tsx';
import { DirectDeliveryTracker } from './direct-deliveries.tsx';
import { LiveBadge, LiveProvider } from './live.tsx';
import { href, navigate, useRoute } from './router.ts';
import { SignInPage } from './pages/sign-in-page.tsx';
import { RegisterPage } from './pages/register-page.tsx';
import { DashboardPage } from './pages/dashboard-page.tsx';
import { GroupsPage } from './pages/groups-page.tsx';
import { GroupPage } from './pages/group-page.tsx';
import { MyGroupsPage } from './pages/my-groups-page.tsx';
import { SendPage } from './pages/send-page.tsx';
import { AdminUsersPage } from './pages/admin-users-page.tsx';

/** The whole app. */
export function App() {
  return (
    <SessionProvider>
      <Shell />
    </SessionProvider>
  );
}

function Shell() {
  const { user, token } = useSession();
  const route = useRoute();
  const publicPage = route[0] === 'signin' || route[0] === 'register';

  useEffect(() => {
    if (!user && !publicPage) navigate('signin');
    if (user && publicPage) navigate('');
  }, [user, publicPage]);

  useEffect(() => {
    const main = document.getElementById('main');
    main?.focus({ preventScroll: true });
  }, [route.join('/')]);

  if (!user) {
    return (
      <div className="app app-public">
        <a className="skip" href="#main" onClick={(e) => skipToMain(e)}>
          Skip to content
        </a>
        <main id="main" tabIndex={-1} className="narrow">
          <p className="brand brand-big">Shoal</p>
          {route[0] === 'register' ? <RegisterPage /> : <SignInPage />}
        </main>
      </div>
    );
  }
  return (
    <LiveProvider token={token}>
      <DirectDeliveryTracker />
      <div className="app">
        <a className="skip" href="#main" onClick={(e) => skipToMain(e)}>
          Skip to content
        </a>
        <Header active={route[0] ?? ''} />
        <main id="main" tabIndex={-1}>
          <Page route={route} />
        </main>
      </div>
    </LiveProvider>
  );
}

function skipToMain(e: React.MouseEvent) {
  // The hash is our router: focus the content instead of changing the route.
  e.preventDefault();
  document.getElementById('main')?.focus();
}

function Header({ active }: { active: string }) {
  const { user, api, signOut } = useSession();
  const links: Array<[string, string]> = [
    ['', 'Dashboard'],
    ['groups', 'Groups'],
    ['mine', 'My groups'],
    ['send', 'Send a file'],
  ];
  if (user?.isAdmin) links.push(['admin', 'Users']);
  const doSignOut = async () => {
    try {
      await api.call('logout');
    } catch {
      // The session ends locally whatever the server says.
    }
    signOut();
  };
  return (
    <header className="topbar">
      <a className="brand" href={href('')}>
        Shoal
      </a>
      <nav aria-label="Main" className="mainnav">
        {links.map(([seg, label]) => (
          <a key={seg} href={href(seg)} aria-current={active === seg ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      <div className="who">
        <LiveBadge />
        <span className="username" title="Signed in as">
          {user?.username}
          {user?.isAdmin && <span className="badge">admin</span>}
        </span>
        <button type="button" onClick={() => void doSignOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}

function Page({ route }: { route: string[] }) {
  const { user } = useSession();
  const [first, second, third] = route;
  switch (first ?? '') {
    case '':
    case 'dashboard':
      return <DashboardPage />;
    case 'groups':
      return second ? <GroupPage name={second} tab={third ?? 'members'} /> : <GroupsPage />;
    case 'mine':
      return <MyGroupsPage />;
    case 'send':
      return <SendPage />;
    case 'admin':
      return user?.isAdmin ? <AdminUsersPage /> : <AdminsOnly />;
    default:
      return (
        <Message title="Page not found">
          There is no page at this address. <a href={href('')}>Go to the dashboard</a>.
        </Message>
      );
  }
}

/** Shown when a non-admin opens an admin URL. */
function AdminsOnly() {
  return (
    <Message title="Admins only">
      This page is for administrators. Your account does not have admin rights; ask an administrator if you need
      them. <a href={href('')}>Back to the dashboard</a>.
    </Message>
  );
}

function Message({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section className="message" aria-labelledby="msg-title">
      <h1 id="msg-title">{title}</h1>
      <p>{children}</p>
    </section>
  );
}
