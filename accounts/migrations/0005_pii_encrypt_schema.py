"""ID numbers encrypted at rest, step 1 of 3: the encrypted column beside the old one, and the
old column widened to hold the keyed search hash ("xx" + 64 hex digits). The format check
goes: the column no longer holds the number (id_number_clean checks it on the way in)."""

from django.db import migrations, models

import core.pii


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_login_session")]

    operations = [
        migrations.RemoveConstraint(model_name="applicant", name="applicant_id_format"),
        migrations.AddField(
            model_name="applicant",
            name="id_number_encrypted",
            field=core.pii.EncryptedCharField(default="", max_length=18, verbose_name="身份证号码"),
        ),
        migrations.AddField(
            model_name="historicalapplicant",
            name="id_number_encrypted",
            field=core.pii.EncryptedCharField(default="", max_length=18, verbose_name="身份证号码"),
        ),
        migrations.AlterField(
            model_name="applicant",
            name="id_number",
            field=models.CharField(
                max_length=66, unique=True, verbose_name="身份证号码（检索哈希）"
            ),
        ),
        migrations.AlterField(
            model_name="historicalapplicant",
            name="id_number",
            field=models.CharField(
                db_index=True, max_length=66, verbose_name="身份证号码（检索哈希）"
            ),
        ),
    ]
