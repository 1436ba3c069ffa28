"""ID numbers encrypted at rest, step 2 of 3: every existing row (and every row of the field
history) gets its number encrypted under the first configured key and the plaintext column
replaced by the keyed search hash. Reversible: the reverse writes the plaintext back."""

from django.db import migrations

from core.pii import search_hash


def _is_hash(value: str) -> bool:
    return len(value) == 66 and value.startswith("xx")


def encrypt(apps, schema_editor):
    for name in ("Applicant", "HistoricalApplicant"):
        model = apps.get_model("accounts", name)
        for row in model.objects.order_by("pk").iterator(chunk_size=500):
            if _is_hash(row.id_number):
                continue  # already done
            model.objects.filter(pk=row.pk).update(
                id_number_encrypted=row.id_number, id_number=search_hash(row.id_number)
            )


def decrypt(apps, schema_editor):
    for name in ("Applicant", "HistoricalApplicant"):
        model = apps.get_model("accounts", name)
        for row in model.objects.order_by("pk").iterator(chunk_size=500):
            if _is_hash(row.id_number):
                model.objects.filter(pk=row.pk).update(id_number=row.id_number_encrypted)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_pii_encrypt_schema")]

    operations = [migrations.RunPython(encrypt, decrypt)]
