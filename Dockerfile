FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY chat chat
COPY chatsite chatsite
COPY static static
COPY manage.py ./
RUN pip install --no-cache-dir . && useradd --create-home chat
USER chat
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "chatsite.asgi:application"]
