import { useCallback, useEffect, useState } from "react";
import { ApiError, GENERIC_ERROR, listUsers, type User } from "./api";
import { UserForm } from "./UserForm";
import { UserList } from "./UserList";

export function App() {
  const [users, setUsers] = useState<User[]>([]);
  const [loading, setLoading] = useState(true);
  const [listError, setListError] = useState<string>();

  useEffect(() => {
    const controller = new AbortController();
    listUsers(controller.signal)
      .then((loaded) => {
        // Users created before the list arrived stay on top.
        setUsers((shown) => [...shown, ...loaded.filter((u) => !shown.some((s) => s.id === u.id))]);
      })
      .catch((error: unknown) => {
        if (controller.signal.aborted) return;
        setListError(error instanceof ApiError ? error.message : GENERIC_ERROR);
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
  }, []);

  const addUser = useCallback((user: User) => {
    setUsers((shown) => [user, ...shown.filter((u) => u.id !== user.id)]);
  }, []);

  const replaceUser = useCallback((user: User) => {
    setUsers((shown) => shown.map((u) => (u.id === user.id ? user : u)));
  }, []);

  return (
    <main>
      <h1 data-testid="app-title">dockwork users</h1>
      <UserForm onCreated={addUser} />
      <section aria-labelledby="users-heading">
        <h2 id="users-heading">Users</h2>
        {listError && (
          <p className="error" role="alert" data-testid="list-error">
            {listError}
          </p>
        )}
        {loading ? <p>Loading…</p> : <UserList users={users} onUpdate={replaceUser} />}
      </section>
    </main>
  );
}
