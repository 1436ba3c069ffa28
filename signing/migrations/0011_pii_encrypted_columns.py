"""Bank account numbers and card photos encrypted at rest, step 3 of 3: the plaintext columns
go and the encrypted ones take their names; a confirmed bank entry needs an account number."""

from django.db import migrations, models
from django.db.models import Q

import core.pii


class Migration(migrations.Migration):
    dependencies = [("signing", "0010_pii_encrypt_data")]

    operations = [
        migrations.RemoveField(model_name="lease", name="account_number"),
        migrations.RemoveField(model_name="cardphoto", name="image"),
        migrations.RenameField(
            model_name="lease", old_name="account_number_encrypted", new_name="account_number"
        ),
        migrations.RenameField(
            model_name="cardphoto", old_name="image_encrypted", new_name="image"
        ),
        migrations.AlterField(
            model_name="cardphoto",
            name="image",
            field=core.pii.EncryptedBinaryField(verbose_name="图像"),
        ),
        migrations.AddConstraint(
            model_name="lease",
            constraint=models.CheckConstraint(
                condition=Q(bank_attempt=0) | (~Q(bank="") & Q(account_number__isnull=False)),
                name="lease_bank_complete",
            ),
        ),
    ]
