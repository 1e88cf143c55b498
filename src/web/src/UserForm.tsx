import { type FormEvent, useState } from "react";
import { ApiError, createUser, GENERIC_ERROR, type NewUser, type User } from "./api";

type Field = keyof NewUser;
type Errors = Partial<Record<Field | "form", string>>;

const EMPTY: NewUser = { name: "", email: "" };

function toErrors(error: unknown): Errors {
  if (!(error instanceof ApiError)) return { form: GENERIC_ERROR };
  const { name, email } = error.fields;
  return name || email ? { name, email } : { form: error.message };
}

export function UserForm({ onCreated }: { onCreated: (user: User) => void }) {
  const [values, setValues] = useState<NewUser>(EMPTY);
  const [errors, setErrors] = useState<Errors>({});
  const [submitting, setSubmitting] = useState(false);

  function change(field: Field, value: string) {
    setValues((v) => ({ ...v, [field]: value }));
    setErrors((e) => ({ ...e, [field]: undefined, form: undefined }));
  }

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setSubmitting(true);
    setErrors({});
    try {
      onCreated(await createUser(values));
      setValues(EMPTY);
    } catch (error) {
      setErrors(toErrors(error));
    } finally {
      setSubmitting(false);
    }
  }

  return (
    <form className="user-form" data-testid="user-form" onSubmit={submit} noValidate>
      <label>
        Name
        <input
          name="name"
          autoComplete="name"
          value={values.name}
          onChange={(e) => change("name", e.target.value)}
          aria-invalid={errors.name ? true : undefined}
          aria-describedby={errors.name ? "name-error" : undefined}
          data-testid="name-input"
        />
        {errors.name && (
          <span className="error" id="name-error" data-testid="name-error">
            {errors.name}
          </span>
        )}
      </label>
      <label>
        Email
        <input
          name="email"
          type="email"
          autoComplete="email"
          value={values.email}
          onChange={(e) => change("email", e.target.value)}
          aria-invalid={errors.email ? true : undefined}
          aria-describedby={errors.email ? "email-error" : undefined}
          data-testid="email-input"
        />
        {errors.email && (
          <span className="error" id="email-error" data-testid="email-error">
            {errors.email}
          </span>
        )}
      </label>
      <button type="submit" disabled={submitting} data-testid="submit">
        {submitting ? "Creating…" : "Create user"}
      </button>
      {errors.form && (
        <p className="error" role="alert" data-testid="form-error">
          {errors.form}
        </p>
      )}
    </form>
  );
}
