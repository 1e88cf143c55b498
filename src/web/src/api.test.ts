import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, createUser, GENERIC_ERROR, getUser, listUsers, type User } from "./api";

const user: User = {
  id: 1,
  email: "a@x.test",
  name: "A",
  created_at: "2026-11-29T10:00:00Z",
  outbox: [{ id: 1, subject: "Welcome, A!", status: "pending", sent_at: null }],
};

function respond(status: number, body: unknown) {
  const fetchMock = vi.fn(async () =>
    typeof body === "string" ? new Response(body, { status }) : Response.json(body, { status }),
  );
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}

async function apiError(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => expect.fail("expected the call to fail"),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("api client", () => {
  it("posts the new user as JSON and returns the created user", async () => {
    const fetchMock = respond(201, user);
    await expect(createUser({ name: "A", email: "a@x.test" })).resolves.toEqual(user);
    expect(fetchMock).toHaveBeenCalledWith("/api/users", {
      method: "POST",
      body: JSON.stringify({ name: "A", email: "a@x.test" }),
      headers: { Accept: "application/json", "Content-Type": "application/json" },
    });
  });

  it("lists and gets users", async () => {
    const fetchMock = respond(200, [user]);
    await expect(listUsers()).resolves.toEqual([user]);
    respond(200, user);
    await expect(getUser(1)).resolves.toEqual(user);
    expect(fetchMock).toHaveBeenCalledWith("/api/users", expect.anything());
  });

  it("maps a 400's extra[].key to field messages", async () => {
    respond(400, {
      status_code: 400,
      detail: "Validation failed for POST /api/users",
      extra: [
        { message: "Enter an email address like name@example.com.", key: "email", source: "body" },
        { message: "This field is required.", key: "name", source: "body" },
      ],
    });
    const error = await apiError(createUser({ name: "", email: "nope" }));
    expect(error.status).toBe(400);
    expect(error.fields).toEqual({
      email: "Enter an email address like name@example.com.",
      name: "This field is required.",
    });
    expect(error.message).toBe("Validation failed for POST /api/users");
  });

  it("keeps a 400 without field keys as a general message", async () => {
    respond(400, { status_code: 400, detail: "Validation failed for POST /api/users" });
    const bare = await apiError(createUser({ name: "A", email: "a@x.test" }));
    expect(bare.fields).toEqual({});
    expect(bare.message).toBe("Validation failed for POST /api/users");

    respond(400, {
      status_code: 400,
      detail: "Validation failed for POST /api/users",
      extra: [{ message: "Object missing required field `name`", source: "body" }],
    });
    const unkeyed = await apiError(createUser({ name: "A", email: "a@x.test" }));
    expect(unkeyed.fields).toEqual({});
    expect(unkeyed.message).toBe(
      "Validation failed for POST /api/users: Object missing required field `name`",
    );
  });

  it("puts a 409 duplicate on the email field", async () => {
    respond(409, { status_code: 409, detail: "a user with email 'a@x.test' exists" });
    const error = await apiError(createUser({ name: "A", email: "a@x.test" }));
    expect(error.status).toBe(409);
    expect(error.fields).toEqual({ email: "a user with email 'a@x.test' exists" });
  });

  it("passes a 404's detail through", async () => {
    respond(404, { status_code: 404, detail: "no user with id 5" });
    const error = await apiError(getUser(5));
    expect(error.status).toBe(404);
    expect(error.message).toBe("no user with id 5");
  });

  it("hides a 5xx body behind the generic message", async () => {
    respond(500, "Internal Server Error");
    const error = await apiError(createUser({ name: "A", email: "a@x.test" }));
    expect(error.status).toBe(500);
    expect(error.message).toBe(GENERIC_ERROR);
    expect(error.fields).toEqual({});
  });

  it("turns a network failure into a status-0 error", async () => {
    vi.stubGlobal("fetch", vi.fn().mockRejectedValue(new TypeError("Failed to fetch")));
    const error = await apiError(listUsers());
    expect(error.status).toBe(0);
    expect(error.message).toBe(GENERIC_ERROR);
  });

  it("rethrows the abort of a cancelled request", async () => {
    const controller = new AbortController();
    controller.abort();
    vi.stubGlobal("fetch", vi.fn().mockRejectedValue(new DOMException("aborted", "AbortError")));
    await expect(listUsers(controller.signal)).rejects.toMatchObject({ name: "AbortError" });
  });
});
