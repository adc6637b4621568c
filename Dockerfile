# Inkmeter portal image: web (gunicorn), Celery worker and beat run from it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATIC_MANIFEST=1 \
    INKMETER_VAR_DIR=/var/lib/inkmeter

# WeasyPrint renders statement PDFs with Pango; fonts for readable documents.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
       libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir "uv==0.13.9" \
    && uv pip install --system --no-cache -r requirements.lock

COPY . .
RUN uv pip install --system --no-cache --no-deps . \
    && DEBUG=False SECRET_KEY=build-only-collectstatic python manage.py collectstatic --noinput \
    && useradd --system --home /app inkmeter \
    && mkdir -p /var/lib/inkmeter/media && chown -R inkmeter /var/lib/inkmeter

USER inkmeter
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
