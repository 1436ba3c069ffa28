"""Bank account numbers and card photos encrypted at rest, step 2 of 3: every existing value
copied into its encrypted column (an empty account number becomes None)."""

from django.db import migrations


def encrypt(apps, schema_editor):
    Lease = apps.get_model("signing", "Lease")
    CardPhoto = apps.get_model("signing", "CardPhoto")
    for lease in Lease.objects.order_by("pk").iterator(chunk_size=500):
        Lease.objects.filter(pk=lease.pk).update(
            account_number_encrypted=lease.account_number or None
        )
    for pk in CardPhoto.objects.order_by("pk").values_list("pk", flat=True):
        photo = CardPhoto.objects.only("image").get(pk=pk)
        CardPhoto.objects.filter(pk=pk).update(image_encrypted=bytes(photo.image))


def decrypt(apps, schema_editor):
    Lease = apps.get_model("signing", "Lease")
    CardPhoto = apps.get_model("signing", "CardPhoto")
    for lease in Lease.objects.order_by("pk").iterator(chunk_size=500):
        Lease.objects.filter(pk=lease.pk).update(
            account_number=lease.account_number_encrypted or ""
        )
    for pk in CardPhoto.objects.order_by("pk").values_list("pk", flat=True):
        photo = CardPhoto.objects.only("image_encrypted").get(pk=pk)
        CardPhoto.objects.filter(pk=pk).update(image=photo.image_encrypted)


class Migration(migrations.Migration):
    dependencies = [("signing", "0009_pii_encrypt_schema")]

    operations = [migrations.RunPython(encrypt, decrypt)]
