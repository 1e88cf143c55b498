export type EmailStatus = "pending" | "sent";

export interface OutboxEmail {
  id: number;
  subject: string;
  status: EmailStatus;
  sent_at: string | null;
}

export interface User {
  id: number;
  email: string;
  name: string;
  created_at: string;
  outbox: OutboxEmail[];
}

export interface NewUser {
  name: string;
  email: string;
}

export const GENERIC_ERROR = "Something went wrong. Please try again.";

/** A failed API call: `status` is 0 when the server could not be reached. */
export class ApiError extends Error {
  readonly status: number;
  /** Messages by the request field they concern, e.g. `{ email: "…" }`. */
  readonly fields: Readonly<Record<string, string>>;

  constructor(status: number, message: string, fields: Record<string, string> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** Turns Litestar's error body (`detail`, optional `extra: [{message, key?}]`) into an ApiError. */
async function toApiError(response: Response): Promise<ApiError> {
  if (response.status >= 500) {
    return new ApiError(response.status, GENERIC_ERROR);
  }
  const body: unknown = await response.json().catch(() => null);
  const detail =
    isRecord(body) && typeof body.detail === "string"
      ? body.detail
      : `Request failed (${response.status})`;
  const fields: Record<string, string> = {};
  const unkeyed: string[] = [];
  const extra = isRecord(body) && Array.isArray(body.extra) ? body.extra : [];
  for (const item of extra) {
    if (!isRecord(item) || typeof item.message !== "string") continue;
    if (typeof item.key === "string" && item.key) {
      fields[item.key] ??= item.message;
    } else {
      unkeyed.push(item.message);
    }
  }
  const message = unkeyed.length ? `${detail}: ${unkeyed.join("; ")}` : detail;
  return new ApiError(response.status, message, fields);
}

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      ...init,
      headers: {
        Accept: "application/json",
        ...(init.body ? { "Content-Type": "application/json" } : {}),
      },
    });
  } catch (error) {
    if (init.signal?.aborted) throw error;
    throw new ApiError(0, GENERIC_ERROR);
  }
  if (!response.ok) throw await toApiError(response);
  return (await response.json()) as T;
}

export function listUsers(signal?: AbortSignal): Promise<User[]> {
  return request<User[]>("/api/users", { signal });
}

export function getUser(id: number, signal?: AbortSignal): Promise<User> {
  return request<User>(`/api/users/${id}`, { signal });
}

export async function createUser(user: NewUser): Promise<User> {
  try {
    return await request<User>("/api/users", { method: "POST", body: JSON.stringify(user) });
  } catch (error) {
    // The only conflict POST /api/users reports is a taken email address.
    if (error instanceof ApiError && error.status === 409) {
      throw new ApiError(409, error.message, { ...error.fields, email: error.message });
    }
    throw error;
  }
}

/** The status of the user's welcome email (the first one in their outbox). */
export function welcomeEmailStatus(user: User): EmailStatus | undefined {
  return user.outbox[0]?.status;
}
