"""Bank account numbers and card photos encrypted at rest, step 1 of 3: encrypted columns
beside the plaintext ones. The lease's bank check can no longer read the number's format (it
is ciphertext); the service checks it on the way in (`account_number_invalid`)."""

from django.db import migrations, models

import core.pii


class Migration(migrations.Migration):
    dependencies = [("signing", "0008_deposit_refund")]

    operations = [
        migrations.RemoveConstraint(model_name="lease", name="lease_bank_complete"),
        migrations.AddField(
            model_name="lease",
            name="account_number_encrypted",
            field=core.pii.EncryptedCharField(
                blank=True, max_length=19, null=True, verbose_name="银行账号"
            ),
        ),
        # The plaintext column may be empty from here on, so that going back (0011 re-adds it
        # empty before 0010's reverse fills it) works with photos present.
        migrations.AlterField(
            model_name="cardphoto",
            name="image",
            field=models.BinaryField(null=True, verbose_name="图像"),
        ),
        migrations.AddField(
            model_name="cardphoto",
            name="image_encrypted",
            field=core.pii.EncryptedBinaryField(null=True, verbose_name="图像"),
        ),
    ]
