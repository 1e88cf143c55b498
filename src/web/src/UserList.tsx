import { useEffect } from "react";
import { getUser, type User, welcomeEmailStatus } from "./api";

const POLL_MS = 1000;

/** While the user's welcome email is pending, refetch the user every second. */
function usePollWhilePending(user: User, onUpdate: (user: User) => void) {
  const pending = welcomeEmailStatus(user) === "pending";
  const { id } = user;

  useEffect(() => {
    if (!pending) return;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout>;
    const poll = async () => {
      try {
        onUpdate(await getUser(id, controller.signal));
      } catch {
        // Aborted, or a transient failure: the next poll tries again.
      }
      if (!controller.signal.aborted) timer = setTimeout(poll, POLL_MS);
    };
    timer = setTimeout(poll, POLL_MS);
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [pending, id, onUpdate]);
}

function UserRow({ user, onUpdate }: { user: User; onUpdate: (user: User) => void }) {
  usePollWhilePending(user, onUpdate);
  const status = welcomeEmailStatus(user);
  const sentAt = user.outbox[0]?.sent_at;

  return (
    <tr data-testid="user-row" data-email={user.email}>
      <td>{user.name}</td>
      <td>{user.email}</td>
      <td>
        <time dateTime={user.created_at}>{new Date(user.created_at).toLocaleString()}</time>
      </td>
      <td>
        <span
          className={`status status-${status ?? "none"}`}
          title={sentAt ? `sent ${new Date(sentAt).toLocaleString()}` : undefined}
          data-testid="email-status"
        >
          {status ?? "none"}
        </span>
      </td>
    </tr>
  );
}

export function UserList({ users, onUpdate }: { users: User[]; onUpdate: (user: User) => void }) {
  return (
    <table data-testid="user-list">
      <thead>
        <tr>
          <th>Name</th>
          <th>Email</th>
          <th>Created</th>
          <th>Welcome email</th>
        </tr>
      </thead>
      <tbody>
        {users.map((user) => (
          <UserRow key={user.id} user={user} onUpdate={onUpdate} />
        ))}
        {users.length === 0 && (
          <tr>
            <td colSpan={4}>No users yet.</td>
          </tr>
        )}
      </tbody>
    </table>
  );
}
