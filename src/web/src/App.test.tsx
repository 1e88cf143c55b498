// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { App } from "./App";
import type { User } from "./api";

const pending: User = {
  id: 7,
  email: "b@x.test",
  name: "B",
  created_at: "2026-11-29T10:00:00Z",
  outbox: [{ id: 3, subject: "Welcome, B!", status: "pending", sent_at: null }],
};
const sent: User = {
  ...pending,
  outbox: [{ id: 3, subject: "Welcome, B!", status: "sent", sent_at: "2026-11-29T10:00:01Z" }],
};

/** A fake backend: GET /api/users is empty, POST answers `created`, GET /api/users/7 `sent`. */
function stubApi(created: { status: number; body: unknown }) {
  const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    if (init?.method === "POST") return Response.json(created.body, { status: created.status });
    return Response.json(url === "/api/users" ? [] : sent);
  });
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}

function fillAndSubmit(name: string, email: string) {
  fireEvent.change(screen.getByTestId("name-input"), { target: { value: name } });
  fireEvent.change(screen.getByTestId("email-input"), { target: { value: email } });
  fireEvent.click(screen.getByTestId("submit"));
}

beforeEach(() => {
  vi.useFakeTimers({ shouldAdvanceTime: true });
});

afterEach(() => {
  cleanup();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

it("shows the API's validation error next to the email field", async () => {
  stubApi({
    status: 400,
    body: {
      status_code: 400,
      detail: "Validation failed for POST /api/users",
      extra: [
        {
          message: "Enter an email address like name@example.com.",
          key: "email",
          source: "body",
        },
      ],
    },
  });
  render(<App />);
  expect(await screen.findByText("No users yet.")).toBeTruthy();

  fillAndSubmit("B", "not-an-email");

  expect((await screen.findByTestId("email-error")).textContent).toBe(
    "Enter an email address like name@example.com.",
  );
  expect(screen.queryByTestId("name-error")).toBeNull();
  expect(screen.queryByTestId("form-error")).toBeNull();
  expect((screen.getByTestId("email-input") as HTMLInputElement).value).toBe("not-an-email");
});

it("prepends the created user, clears the form and polls until the email is sent", async () => {
  const fetchMock = stubApi({ status: 201, body: pending });
  render(<App />);
  await screen.findByText("No users yet.");

  fillAndSubmit("B", "b@x.test");

  const row = await screen.findByTestId("user-row");
  expect(row.dataset.email).toBe("b@x.test");
  expect(screen.getByTestId("email-status").textContent).toBe("pending");
  expect((screen.getByTestId("name-input") as HTMLInputElement).value).toBe("");

  await act(() => vi.advanceTimersByTimeAsync(1000));

  expect(screen.getByTestId("email-status").textContent).toBe("sent");
  expect(fetchMock).toHaveBeenCalledWith("/api/users/7", expect.anything());
  const calls = fetchMock.mock.calls.length;
  await act(() => vi.advanceTimersByTimeAsync(3000));
  expect(fetchMock.mock.calls.length).toBe(calls);
});
