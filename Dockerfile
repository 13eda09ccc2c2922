# The image of every app service in docker-compose.yml (migrate, web, worker).

# Build: install the project and its dependencies, within pyproject.toml's ranges, into a venv.
FROM python:3.12-slim AS build
RUN python -m venv /venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY chat chat
COPY chatsite chatsite
RUN /venv/bin/pip install --no-cache-dir .

# Run: the venv and the sources, as an unprivileged user.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH
RUN useradd --create-home --uid 10001 chat \
    && mkdir -p /srv/static /srv/media && chown chat /srv/static /srv/media
COPY --from=build /venv /venv
WORKDIR /app
COPY manage.py ./
COPY chat chat
COPY chatsite chatsite
COPY static static
USER chat
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "chatsite.asgi:application"]
